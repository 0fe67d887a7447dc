// hush-harness: Hush's (and the floor's) side of the comparison with libsignal-protocol-c and
// libolm. Same protocol as the C harnesses (Benchmarks/README.md):
//   hush-harness [--ops a,b] [--quick] [--list]
//   hush-harness --ops group_send_100_devices,group_send_100_devices_cached,pairwise_send_100_devices
// prints one JSON object per line: {"impl":"hush","op":"encrypt_100","ns":1234.5,"iterations":N}
import Foundation
import Hush
import ProtocolBodies

let arguments = Array(CommandLine.arguments.dropFirst())
let quick = arguments.contains("--quick")
var selected: Set<String>?
if let i = arguments.firstIndex(of: "--ops"), i + 1 < arguments.count {
    selected = Set(arguments[i + 1].split(separator: ",").map(String.init))
}
let implementations: [(String, [BenchOperation])] = [("hush", HushOperations.all + PQXDHOperations.all + HushOperations.fanout),
                                                      ("floor", FloorOperations.all)]
/// Every operation, the comparison's first; the group fan-out ones (Hush only) run when `--ops` names them.
let runnable = OperationName.all + HushOperations.fanout.map(\.name).filter { selected?.contains($0) ?? false }

if arguments.contains("--pq-bytes") {
    for suite in [CipherSuite.signalV3, .hush1] {
        let (x, p) = try! PQXDHOperations.addedBytes(suite: suite)
        print("\(suite): first message \(x) bytes with X3DH, \(p) with PQXDH (+\(p - x))")
    }
    exit(0)
}

if arguments.contains("--list") {
    for name in OperationName.all where (HushOperations.all + PQXDHOperations.all).contains(where: { $0.name == name }) { print(name) }
    exit(0)
}

/// Batch sizes: enough work per batch to be measurable, few enough to finish quickly.
func batchSize(_ op: String) -> Int {
    switch op {
    case "x3dh_initiator", "x3dh_responder", "x3dh_initiator_hush1", "x3dh_responder_hush1",
         "pqxdh_initiator", "pqxdh_responder", "pqxdh_initiator_hush1", "pqxdh_responder_hush1": return quick ? 40 : 150
    case "ping_pong", "ping_pong_hush1": return quick ? 100 : 400
    case "roundtrip_64k", "roundtrip_64k_hush1": return quick ? 20 : 100
    case "record_serialize_2000", "record_deserialize_2000": return quick ? 20 : 100
    case "xeddsa_sign", "xeddsa_verify", "senderkey_encrypt_100", "senderkey_decrypt_100", "envelope_seal", "envelope_open":
        return quick ? 200 : 1000
    case "group_send_100_devices", "group_send_100_devices_cached", "pairwise_send_100_devices": return quick ? 5 : 30
    default: return quick ? 2000 : 10000
    }
}

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

let batches = quick ? 3 : 7
for name in runnable where selected?.contains(name) ?? true {
    for (impl, operations) in implementations {
        guard let op = operations.first(where: { $0.name == name }) else { continue }
        let n = batchSize(name)
        do {
            try op.prepare(max(1, n / 10))()  // warm-up
            var samples: [Double] = []
            for _ in 0..<batches {
                let run = try op.prepare(n)
                let start = now()
                try run()
                samples.append(Double(now() - start) / Double(n))
            }
            samples.sort()
            let median = samples[samples.count / 2]
            let line = "{\"impl\":\"\(impl)\",\"op\":\"\(name)\",\"ns\":\(String(format: "%.1f", median)),\"iterations\":\(n * batches)}\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        } catch {
            FileHandle.standardError.write(Data("\(impl) \(name) failed: \(error)\n".utf8))
        }
    }
}
