// ML-KEM-1024 encapsulation with given randomness `m` (FIPS 203 `ML-KEM.Encaps_internal(ek, m)`),
// so that the vectors list every random input. swift-crypto 4.5.2 cannot do it: its seeded
// encapsulation is internal and, for ML-KEM-1024 over BoringSSL, a `fatalError()`. So this
// generator asks kyber-py (PyPI, pure Python FIPS 203) — the same package Tools/spec-check uses —
// through `HUSH_PQ_PYTHON` (default: Tools/spec-check/.venv/bin/python, made by
// Tools/spec-check/run.sh). Hush's own decapsulation (BoringSSL) then has to agree with it when
// the vectors are replayed, which checks the two ML-KEMs against each other.
import Foundation
import HushPQ

func seededEncapsulation(ek: [UInt8], m: [UInt8]) -> (ciphertext: [UInt8], sharedSecret: [UInt8]) {
    let python = ProcessInfo.processInfo.environment["HUSH_PQ_PYTHON"] ?? "Tools/spec-check/.venv/bin/python"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", """
        import sys
        from kyber_py.ml_kem import ML_KEM_1024
        ss, ct = ML_KEM_1024._encaps_internal(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]))
        print(ct.hex(), ss.hex())
        """, Hex.encode(ek), Hex.encode(m)]
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch { fatalError("hush-pq-vectors: cannot run \(python) (run Tools/spec-check/run.sh once): \(error)") }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let parts = output.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
    guard process.terminationStatus == 0, parts.count == 2 else { fatalError("hush-pq-vectors: kyber-py failed: \(output)") }
    return (try! Hex.decode(parts[0]), try! Hex.decode(parts[1]))
}
