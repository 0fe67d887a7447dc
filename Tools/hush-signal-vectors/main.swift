// hush-signal-vectors: writes Signal v3 session transcripts (signal-v3-session-vectors/1,
// FORMAT.md) made by Debian's libsignal-protocol-c 2.3.3 with a seeded random stream.
//
//   swift run hush-signal-vectors --out DIR [--seed N]... [--compare DIR] [scenario ...]
//
// One file per scenario and seed, DIR/<scenario>-seed<N>.json. Default: all scenarios,
// seed 1. --compare DIR checks each file against DIR/<same name> (parsed JSON equality,
// and whether the bytes are identical) and exits 1 on any difference.
import Foundation

let usage = """
    usage: hush-signal-vectors --out DIR [--seed N]... [--compare DIR] [scenario ...]
    scenarios: \(Scenarios.all.map(\.name).joined(separator: " "))
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var outDirectory: String?
var compareDirectory: String?
var seeds: [UInt64] = []
var names: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--out":
        guard let value = arguments.popFirst() else { fail(usage) }
        outDirectory = value
    case "--seed":
        guard let value = arguments.popFirst(), let seed = UInt64(value) else { fail(usage) }
        seeds.append(seed)
    case "--compare":
        guard let value = arguments.popFirst() else { fail(usage) }
        compareDirectory = value
    case "-h", "--help":
        print(usage)
        exit(0)
    default:
        if argument.hasPrefix("-") { fail(usage) }
        names.append(argument)
    }
}
guard let outDirectory else { fail(usage) }
if seeds.isEmpty { seeds = [1] }
let scenarios: [Scenario] = names.isEmpty ? Scenarios.all : names.map { name in
    guard let scenario = Scenarios.named(name) else { fail("unknown scenario \(name)\n\(usage)") }
    return scenario
}

do {
    try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
} catch {
    fail("cannot create \(outDirectory): \(error)")
}

/// "identical", "same JSON" or what differs.
func compare(_ produced: String, withFileAt path: String) -> (same: Bool, note: String) {
    guard let existing = FileManager.default.contents(atPath: path) else { return (false, "no file \(path)") }
    let producedData = Data(produced.utf8)
    if existing == producedData { return (true, "identical bytes") }
    guard let a = try? JSONSerialization.jsonObject(with: producedData) as? NSDictionary,
          let b = try? JSONSerialization.jsonObject(with: existing) as? NSDictionary else {
        return (false, "unparsable JSON")
    }
    if a.isEqual(b) { return (true, "same JSON (bytes differ)") }
    for key in ["format", "generator", "scenario", "description", "seed", "rng", "parties"] {
        let x = a[key] as? NSObject
        let y = b[key] as? NSObject
        if !(x == nil && y == nil) && !(x?.isEqual(y) ?? false) {
            return (false, "differs in \(key)")
        }
    }
    let stepsA = a["steps"] as? [NSDictionary] ?? []
    let stepsB = b["steps"] as? [NSDictionary] ?? []
    for (index, (x, y)) in zip(stepsA, stepsB).enumerated() where !x.isEqual(y) {
        return (false, "differs at step \(index)")
    }
    return (false, "step counts differ: \(stepsA.count) vs \(stepsB.count)")
}

var differences = 0
for scenario in scenarios {
    for seed in seeds {
        let transcript = Transcript(scenario: scenario.name, description: scenario.description, seed: seed)
        do {
            try scenario.run(transcript)
        } catch {
            fail("\(scenario.name) seed \(seed): \(error)")
        }
        let text = transcript.render()
        let fileName = "\(scenario.name)-seed\(seed).json"
        let path = (outDirectory as NSString).appendingPathComponent(fileName)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            fail("cannot write \(path)")
        }
        var line = "wrote \(path) (\(transcript.steps.count) steps)"
        if let compareDirectory {
            let result = compare(text, withFileAt: (compareDirectory as NSString).appendingPathComponent(fileName))
            line += result.same ? " — matches: \(result.note)" : " — DIFFERS: \(result.note)"
            if !result.same { differences += 1 }
        }
        print(line)
    }
}
exit(differences == 0 ? 0 : 1)
