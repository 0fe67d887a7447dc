import Foundation
import HushCrypto
import Testing

/// The package root, found from this file's path (works from any working directory).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
/// `../shared` beside the package, where CI and developers keep the external vectors.
let sharedVectors = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors")
/// In CI (environment `CI=true`) the suites that need `../shared/vectors` always run, so that a
/// missing directory fails them instead of disabling them; on a developer machine without it
/// they are skipped with a reason.
let runningInCI = ["1", "true", "yes"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "")

func hex(_ s: String) -> [UInt8] { try! Hex.decode(s) }

func loadJSON(_ url: URL) throws -> [String: Any] {
    let data = try Data(contentsOf: url)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Every signed prekey signature in the Signal v3 transcripts, with its inputs.
struct SignalSignatureCase: CustomStringConvertible, Sendable {
    let file: String
    let identityPrivate: [UInt8]
    let identityPublic: [UInt8]   // 33 bytes
    let message: [UInt8]          // 33-byte signed prekey public
    let signature: [UInt8]
    let randomness: [UInt8]
    var description: String { "\(file): \(Hex.encode(message.prefix(6)))…" }
}

func signalSignatureCases() -> [SignalSignatureCase] {
    let dir = sharedVectors.appendingPathComponent("signal-v3")
    guard let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
    var cases: [SignalSignatureCase] = []
    for file in files.sorted() where file.hasSuffix(".json") {
        guard let json = try? loadJSON(dir.appendingPathComponent(file)),
              let parties = json["parties"] as? [[String: Any]] else { continue }
        for party in parties {
            guard let identity = party["identity_key"] as? [String: String],
                  let spks = party["signed_prekeys"] as? [[String: Any]] else { continue }
            for spk in spks {
                cases.append(SignalSignatureCase(
                    file: file,
                    identityPrivate: hex(identity["private"]!), identityPublic: hex(identity["public"]!),
                    message: hex(spk["public"] as! String), signature: hex(spk["signature"] as! String),
                    randomness: hex(spk["signature_random"] as! String)))
            }
        }
    }
    return cases
}
