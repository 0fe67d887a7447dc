// Protocol-level benchmarks (package-benchmark): every shared operation for Hush and for the
// floor (the unavoidable primitive calls), with time and heap allocations per operation.
//   cd Benchmarks && swift package benchmark --target ProtocolBenchmarks
// Each sample runs a batch of operations prepared outside the measurement (warm caches, as in
// a conversation); the figures are per operation.
import Benchmark
import ProtocolBodies

let benchmarks: @Sendable () -> Void = {
    for (impl, operations) in [("Hush", HushOperations.all + HushOperations.fanout), ("floor", FloorOperations.all)] {
        for op in operations {
            // Batches of 1,000 for the fast operations; one per sample for those whose cost is
            // dominated by scalar multiplications (cache warmth does not matter there).
            let scaling: BenchmarkScalingFactor = op.batch >= 1000 ? .kilo : .one
            Benchmark(
                "\(op.name) \(impl)",
                configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: scaling,
                                     maxDuration: .seconds(3), maxIterations: 200)
            ) { benchmark in
                let run = try op.prepare(benchmark.scaledIterations.count)
                benchmark.startMeasurement()
                try run()
                benchmark.stopMeasurement()
            }
        }
    }
}
