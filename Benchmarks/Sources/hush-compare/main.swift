// hush-compare: runs hush-harness, libsignal-harness and olm-harness (found next to this binary)
// and, when given a Python with vodozemac, the vodozemac harness, interleaved for several rounds
// on this machine, and prints one Markdown table of the medians with the ratios Hush/floor,
// Hush/libsignal, Hush/libolm and Hush/vodozemac (gross, and net of the Python call overhead the
// harness measures). See Benchmarks/README.md.
//
// Harness protocol: `<harness> [--ops a,b,c] [--quick] [--list]`; one JSON object per line:
// {"impl":"…","op":"…","ns":<median ns per op over the invocation's batches>,"iterations":N}.
import Foundation

let usage = """
    usage: hush-compare [--quick] [--rounds N] [--ops a,b,c] [--json FILE] [--harness-dir DIR]
                        [--vodozemac PYTHON SCRIPT]
      --quick            2 rounds (unless --rounds) and --quick passed to the harnesses
      --rounds N         rounds of hush-harness, libsignal-harness, olm-harness in turn (default 5)
      --ops a,b,c        only these operations
      --json FILE        also write every harness line (with its round) and the medians as JSON
      --harness-dir DIR  where the harness binaries are (default: this binary's folder)
      --vodozemac PYTHON SCRIPT  also run Peers/vodozemac-harness/harness.py (SCRIPT) with PYTHON,
                         a Python that has the vodozemac package (compare.sh makes its venv)
    """

/// The table's operations, in order; anything else a harness reports is appended.
let canonicalOps = [
    "x3dh_initiator", "x3dh_responder", "encrypt_100", "decrypt_100", "ping_pong", "roundtrip_1k", "roundtrip_64k",
    "record_serialize_fresh", "record_deserialize_fresh", "record_serialize_2000", "record_deserialize_2000",
    "xeddsa_sign", "xeddsa_verify", "senderkey_encrypt_100", "senderkey_decrypt_100",
]
/// The vodozemac harness's no-op call into its bindings (ns per call).
let overheadOp = "call_overhead"
let harnessNames = ["hush-harness", "libsignal-harness", "olm-harness"]

struct Options {
    var quick = false
    var rounds: Int?
    var ops: [String]?
    var jsonPath: String?
    var harnessDir: String?
    var vodozemac: (python: String, script: String)?
}

struct Sample {
    let round: Int
    let impl: String
    let op: String
    let ns: Double
    let iterations: Int
    let calls: Int
}

struct Key: Hashable {
    let impl: String
    let op: String
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("hush-compare: \(message)\n".utf8))
    exit(2)
}

func note(_ message: String) {
    FileHandle.standardError.write(Data("hush-compare: \(message)\n".utf8))
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var i = 1
    func value(_ name: String) -> String {
        i += 1
        guard i < arguments.count else { fail("\(name) needs a value\n\(usage)") }
        return arguments[i]
    }
    while i < arguments.count {
        switch arguments[i] {
        case "--quick": options.quick = true
        case "--rounds":
            guard let rounds = Int(value("--rounds")), rounds > 0 else { fail("--rounds needs a positive number") }
            options.rounds = rounds
        case "--ops": options.ops = value("--ops").split(separator: ",").map(String.init)
        case "--json": options.jsonPath = value("--json")
        case "--harness-dir": options.harnessDir = value("--harness-dir")
        case "--vodozemac":
            let python = value("--vodozemac")
            options.vodozemac = (python, value("--vodozemac"))
        case "--help", "-h":
            print(usage)
            exit(0)
        default: fail("unknown argument '\(arguments[i])'\n\(usage)")
        }
        i += 1
    }
    return options
}

func ownDirectory() -> URL {
    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        return URL(fileURLWithPath: target).deletingLastPathComponent()
    }
    if let url = Bundle.main.executableURL { return url.resolvingSymlinksInPath().deletingLastPathComponent() }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
}

/// Runs a program to completion; stdout is captured, stderr goes to ours.
func run(_ path: String, _ arguments: [String]) -> (status: Int32, output: String)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch {
        note("could not start \(path): \(error)")
        return nil
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func parseLines(_ output: String, round: Int, harness: String) -> [Sample] {
    var samples: [Sample] = []
    for line in output.split(whereSeparator: \.isNewline) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let impl = object["impl"] as? String, let op = object["op"] as? String,
            let ns = (object["ns"] as? NSNumber)?.doubleValue
        else {
            note("\(harness): ignoring a line that is not a result: \(line)")
            continue
        }
        let iterations = (object["iterations"] as? NSNumber)?.intValue ?? 0
        let calls = (object["calls"] as? NSNumber)?.intValue ?? 0
        samples.append(Sample(round: round, impl: impl, op: op, ns: ns, iterations: iterations, calls: calls))
    }
    return samples
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func readFirstLine(_ path: String, prefix: String = "") -> String? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
}

func machineDescription() -> (cpu: String, cores: Int) {
    let cpu = readFirstLine("/proc/cpuinfo", prefix: "model name")
        .flatMap { $0.split(separator: ":", maxSplits: 1).last }
        .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return (cpu, ProcessInfo.processInfo.activeProcessorCount)
}

func loadAverage() -> String {
    readFirstLine("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "n/a"
}

func main() {
    let options = parseOptions(CommandLine.arguments)
    let rounds = options.rounds ?? (options.quick ? 2 : 5)
    let directory = options.harnessDir.map { URL(fileURLWithPath: $0) } ?? ownDirectory()

    // Which harnesses exist and what they can do.
    var available: [(name: String, path: String, prefix: [String], ops: [String])] = []
    var candidates = harnessNames.map { (name: $0, path: directory.appendingPathComponent($0).path, prefix: [String]()) }
    if let vodozemac = options.vodozemac {
        candidates.append((name: "vodozemac-harness", path: vodozemac.python, prefix: [vodozemac.script]))
    } else {
        note("no --vodozemac PYTHON SCRIPT: the vodozemac column stays empty")
    }
    for (name, path, prefix) in candidates {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            note("\(name) not found at \(path); its column stays empty")
            continue
        }
        guard let (status, output) = run(path, prefix + ["--list"]), status == 0 else {
            note("\(name) --list failed; skipping it")
            continue
        }
        var ops = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        // The call overhead always runs with the vodozemac harness: its net times need it.
        if let wanted = options.ops { ops = ops.filter { wanted.contains($0) || $0 == overheadOp } }
        if ops.isEmpty {
            note("\(name): none of the requested operations; skipping it")
            continue
        }
        available.append((name, path, prefix, ops))
    }
    guard !available.isEmpty else { fail("no harness to run") }

    let machine = machineDescription()
    let loadBefore = loadAverage()
    let started = Date()
    var samples: [Sample] = []
    for round in 1...rounds {
        for harness in available {
            var arguments = options.quick ? ["--quick"] : []
            if options.ops != nil { arguments += ["--ops", harness.ops.joined(separator: ",")] }
            let t0 = Date()
            guard let (status, output) = run(harness.path, harness.prefix + arguments) else { continue }
            let lines = parseLines(output, round: round, harness: harness.name)
            samples += lines
            let seconds = String(format: "%.1f", Date().timeIntervalSince(t0))
            note("round \(round)/\(rounds): \(harness.name): \(lines.count) results in \(seconds) s"
                + (status == 0 ? "" : " (exit status \(status); missing operations are left out)"))
        }
    }
    let elapsed = Date().timeIntervalSince(started)
    let loadAfter = loadAverage()

    // Median across rounds per (impl, op).
    var grouped: [Key: [Double]] = [:]
    var calls: [String: Int] = [:]  // vodozemac: calls into the bindings per operation
    var opOrder = canonicalOps.filter { options.ops?.contains($0) ?? true }
    for sample in samples {
        grouped[Key(impl: sample.impl, op: sample.op), default: []].append(sample.ns)
        if sample.impl == "vodozemac" { calls[sample.op] = sample.calls }
        if !opOrder.contains(sample.op) && sample.op != overheadOp { opOrder.append(sample.op) }
    }
    var medians = grouped.mapValues(median)
    // vodozemac net of Python: minus its measured no-op call, once per call the operation makes.
    let overhead = medians[Key(impl: "vodozemac", op: overheadOp)]
    if let overhead {
        for (key, ns) in medians where key.impl == "vodozemac" && key.op != overheadOp {
            medians[Key(impl: "vodozemac-net", op: key.op)] = max(0, ns - Double(calls[key.op] ?? 0) * overhead)
        }
    }

    func time(_ impl: String, _ op: String) -> String {
        medians[Key(impl: impl, op: op)].map { String(format: "%.2f", $0 / 1000) } ?? "—"
    }
    func ratio(_ op: String, _ other: String) -> String {
        guard let hush = medians[Key(impl: "hush", op: op)], let value = medians[Key(impl: other, op: op)], value > 0
        else { return "—" }
        let r = hush / value
        return String(format: r < 0.1 ? "%.2g×" : "%.2f×", r)
    }

    print("Hush vs libsignal-protocol-c vs libolm vs vodozemac — \(machine.cpu), \(machine.cores) cores; "
        + "\(rounds) round\(rounds == 1 ? "" : "s")\(options.quick ? " (quick)" : ""), interleaved; "
        + "load average \(loadBefore) before, \(loadAfter) after; \(String(format: "%.0f", elapsed)) s.")
    print("Times: µs per operation, median over rounds of each run's median over batches. "
        + "vodozemac runs through its Python bindings: \"net\" subtracts the measured no-op call "
        + "(\(overhead.map { String(format: "%.0f ns", $0) } ?? "not measured")) once per call into the bindings.")
    print("")
    print("| operation | Hush | floor | libsignal-protocol-c | libolm | vodozemac | vodozemac net "
        + "| Hush/floor | Hush/libsignal | Hush/libolm | Hush/vodozemac | Hush/vodozemac net |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in opOrder where medians.keys.contains(where: { $0.op == op }) {
        let cells = [
            op, time("hush", op), time("floor", op), time("libsignal-protocol-c", op), time("libolm", op),
            time("vodozemac", op), time("vodozemac-net", op),
            ratio(op, "floor"), ratio(op, "libsignal-protocol-c"), ratio(op, "libolm"), ratio(op, "vodozemac"),
            ratio(op, "vodozemac-net"),
        ]
        print("| " + cells.joined(separator: " | ") + " |")
    }
    if let overhead {
        let cells = [overheadOp + " (one no-op call)", "—", "—", "—", "—", String(format: "%.2f", overhead / 1000)]
            + Array(repeating: "—", count: 6)
        print("| " + cells.joined(separator: " | ") + " |")
    }
    // The project's goals (Docs/performance.md), checked on this run.
    func value(_ impl: String, _ op: String) -> Double? { medians[Key(impl: impl, op: op)] }
    var goals: [String] = []
    for (peer, label) in [("libsignal-protocol-c", "libsignal-protocol-c"), ("libolm", "libolm"),
                          ("vodozemac", "vodozemac (gross)"), ("vodozemac-net", "vodozemac (net of Python)")] {
        let peerOps = opOrder.filter { value("hush", $0) != nil && value(peer, $0) != nil }
        guard !peerOps.isEmpty else { continue }
        let slower = peerOps.filter { value("hush", $0)! >= value(peer, $0)! }
        goals.append(slower.isEmpty ? "met: every operation is faster than \(label)"
                                    : "MISSED: not faster than \(label) for \(slower.joined(separator: ", "))")
    }
    func floorGoal(_ ops: [String], _ limit: Double) {
        let measured = ops.filter { value("hush", $0) != nil && value("floor", $0) != nil }
        guard !measured.isEmpty else { return }
        let over = measured.filter { value("hush", $0)! / value("floor", $0)! > limit }
        let list = measured.map { "\($0) \(String(format: "%.2f", value("hush", $0)! / value("floor", $0)!))×" }.joined(separator: ", ")
        goals.append((over.isEmpty ? "met" : "MISSED") + ": ≤ \(String(format: "%.2f", limit))× the floor — \(list)")
    }
    floorGoal(["encrypt_100", "decrypt_100", "encrypt_100_hush1", "decrypt_100_hush1"], 1.15)
    floorGoal(["pqxdh_initiator", "pqxdh_responder", "pqxdh_initiator_hush1", "pqxdh_responder_hush1"], 1.1)
    floorGoal(["ping_pong", "x3dh_initiator", "x3dh_responder", "roundtrip_64k",
               "ping_pong_hush1", "x3dh_initiator_hush1", "x3dh_responder_hush1", "roundtrip_64k_hush1"], 1.1)
    for peer in ["vodozemac", "vodozemac-net"] {
        let ops = ["encrypt_100", "decrypt_100"].filter { value("hush", $0) != nil && value(peer, $0) != nil }
        guard !ops.isEmpty else { continue }
        let list = ops.map { "\($0) \(String(format: "%.2f", value("hush", $0)! / 1000)) µs vs \(String(format: "%.2f", value(peer, $0)! / 1000)) µs" }
        let met = ops.allSatisfy { value("hush", $0)! < value(peer, $0)! }
        goals.append((met ? "met" : "MISSED") + ": steady-state messages faster than \(peer == "vodozemac" ? "vodozemac (gross)" : "vodozemac net of Python") — "
            + list.joined(separator: ", "))
    }
    if !goals.isEmpty {
        print("")
        print("Goals (Docs/performance.md explains any miss):")
        for goal in goals { print("- " + goal) }
    }

    if medians.keys.contains(where: { $0.impl == "libolm" || $0.impl == "vodozemac" }) {
        print("")
        print("libolm and vodozemac (both Olm) differ: Olm's handshake has no signed pre key (no signature check, 3 DH); "
            + "xeddsa_* are Ed25519; they keep at most 40 skipped message keys (record_*_2000 hold 40); libolm's messages "
            + "and pickles are base64, vodozemac's messages are bytes; records are pickles encrypted under a key. "
            + "See Benchmarks/Peers/README.md.")
    }

    if let path = options.jsonPath {
        let document: [String: Any] = [
            "quick": options.quick,
            "rounds": rounds,
            "started": ISO8601DateFormatter().string(from: started),
            "seconds": elapsed,
            "machine": ["cpu": machine.cpu, "cores": machine.cores, "loadavg_before": loadBefore,
                        "loadavg_after": loadAfter],
            "runs": samples.map {
                ["round": $0.round, "impl": $0.impl, "op": $0.op, "ns": $0.ns, "iterations": $0.iterations, "calls": $0.calls] as [String: Any]
            },
            "medians": medians.keys.sorted { ($0.op, $0.impl) < ($1.op, $1.impl) }.map {
                ["impl": $0.impl, "op": $0.op, "ns": medians[$0]!] as [String: Any]
            },
        ]
        do {
            let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: path))
        } catch {
            note("could not write \(path): \(error)")
            exit(1)
        }
    }
}

main()
