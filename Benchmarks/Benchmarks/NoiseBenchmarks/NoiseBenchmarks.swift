// HushNoise (package-benchmark): the server side of a Noise_IK handshake against its primitive
// floor, and transport encryption of 100 bytes against ChaCha20-Poly1305 itself.
//   cd Benchmarks && swift package benchmark --target NoiseBenchmarks
//
// The floor of the IK responder is its scalar multiplications, counted from the pattern
// (Noise §7.5, `<- s ... -> e, es, s, ss  <- e, ee, se`): reading message 1 computes es and ss,
// writing message 2 generates e (a fixed-base multiplication) and computes ee and se — one
// crypto_scalarmult_curve25519_base and four crypto_scalarmult_curve25519, called directly.
// Everything else HushNoise does (SHA-256, HKDF, ChaCha20-Poly1305, key checks, the system
// random bytes of e, allocations) is the overhead measured against it.
import Benchmark
import CFloor
import HushNoise

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 20,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    let server = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 1))
    let client = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 2))
    let login = [UInt8](repeating: 0x6c, count: 100)
    // One first message, read by a fresh responder each time (a responder keeps no replay state).
    var initiator = try! NoiseHandshake(pattern: .ik, role: .initiator, localStatic: client, remoteStatic: server.publicKey)
    let first = try! initiator.writeMessage(payload: login)

    Benchmark("Noise IK responder: read 1, write 2, split") { benchmark in
        for _ in benchmark.scaledIterations {
            var responder = try! NoiseHandshake(pattern: .ik, role: .responder, localStatic: server)
            blackHole(try! responder.readMessage(first))
            blackHole(try! responder.writeMessage(payload: [UInt8]()))
            blackHole(try! responder.split())
        }
    }

    Benchmark("Noise IK responder floor: 1 base + 4 X25519") { benchmark in
        floorIKResponder(iterations: benchmark.scaledIterations.count)
    }

    Benchmark("Noise IK responder floor via HushCrypto: 1 key generation + 4 agreements") { benchmark in
        let re = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 3)).publicKey
        for _ in benchmark.scaledIterations {
            blackHole(try! server.sharedSecretFromKeyAgreement(with: re))
            blackHole(try! server.sharedSecretFromKeyAgreement(with: client.publicKey))
            let e = try! Curve25519.KeyAgreement.PrivateKey()
            blackHole(try! e.sharedSecretFromKeyAgreement(with: re))
            blackHole(try! e.sharedSecretFromKeyAgreement(with: client.publicKey))
        }
    }

    // One handshake per sample (the default scaling), so the measurement can skip its setup.
    Benchmark("Noise IK initiator: read 2, split (message 1 written outside the timing)") { benchmark in
        for _ in benchmark.scaledIterations {
            var i = try! NoiseHandshake(pattern: .ik, role: .initiator, localStatic: client, remoteStatic: server.publicKey)
            var r = try! NoiseHandshake(pattern: .ik, role: .responder, localStatic: server)
            let m1 = try! i.writeMessage(payload: login)
            _ = try! r.readMessage(m1)
            let m2 = try! r.writeMessage(payload: [UInt8]())
            benchmark.startMeasurement()
            blackHole(m1)
            blackHole(try! i.readMessage(m2))
            blackHole(try! i.split())
            benchmark.stopMeasurement()
        }
    }

    // XX is interactive to the end (message 3 answers message 2), so both sides are timed
    // together: 2 key generations and 6 X25519 in all.
    Benchmark("Noise XX handshake, both sides: 3 messages, split") { benchmark in
        for _ in benchmark.scaledIterations {
            var i = try! NoiseHandshake(pattern: .xx, role: .initiator, localStatic: client)
            var r = try! NoiseHandshake(pattern: .xx, role: .responder, localStatic: server)
            _ = try! r.readMessage(try! i.writeMessage(payload: [UInt8]()))
            _ = try! i.readMessage(try! r.writeMessage(payload: [UInt8]()))
            blackHole(try! r.readMessage(try! i.writeMessage(payload: login)))
            blackHole(try! i.split())
            blackHole(try! r.split())
        }
    }

    let transports: (NoiseTransport, NoiseTransport) = {
        var i = try! NoiseHandshake(pattern: .ik, role: .initiator, localStatic: client, remoteStatic: server.publicKey)
        var r = try! NoiseHandshake(pattern: .ik, role: .responder, localStatic: server)
        _ = try! r.readMessage(try! i.writeMessage(payload: [UInt8]()))
        _ = try! i.readMessage(try! r.writeMessage(payload: [UInt8]()))
        return (try! i.split(), try! r.split())
    }()
    let message100 = [UInt8](repeating: 0x61, count: 100)

    Benchmark("Noise transport encrypt 100 B", configuration: .init(timeUnits: .nanoseconds, scalingFactor: .kilo)) { benchmark in
        encryptLoop(transports.0, message100, iterations: benchmark.scaledIterations.count)
    }
    Benchmark("Noise transport encrypt in place 100 B", configuration: .init(timeUnits: .nanoseconds, scalingFactor: .kilo)) { benchmark in
        encryptInPlaceLoop(transports.0, message100, iterations: benchmark.scaledIterations.count)
    }
    Benchmark("Noise transport decrypt 100 B", configuration: .init(timeUnits: .nanoseconds, scalingFactor: .kilo)) { benchmark in
        // Messages are encrypted outside the measurement, in order, then decrypted in order.
        var sender = transports.0
        let messages = (0..<benchmark.scaledIterations.count).map { _ in try! sender.encrypt(message100) }
        benchmark.startMeasurement()
        decryptLoop(transports.1, messages)
        benchmark.stopMeasurement()
    }
    Benchmark("Noise transport decrypt in place 100 B", configuration: .init(timeUnits: .nanoseconds, scalingFactor: .kilo)) { benchmark in
        var sender = transports.0
        var messages = (0..<benchmark.scaledIterations.count).map { _ in try! sender.encrypt(message100) }
        benchmark.startMeasurement()
        decryptInPlaceLoop(transports.1, &messages)
        benchmark.stopMeasurement()
    }
    Benchmark("Noise transport floor: ChaCha20-Poly1305 100 B", configuration: .init(timeUnits: .nanoseconds, scalingFactor: .kilo)) { benchmark in
        floorSeal(message100, iterations: benchmark.scaledIterations.count)
    }
}

// Loops live in functions with local state (globals in a benchmark's closure add checks).

@inline(never)
func floorIKResponder(iterations: Int) {
    var scalar = [UInt8](repeating: 0x42, count: 32), ephemeral = [UInt8](repeating: 0x24, count: 32)
    scalar[0] &= 248; scalar[31] = (scalar[31] & 127) | 64
    ephemeral[0] &= 248; ephemeral[31] = (ephemeral[31] & 127) | 64
    var point = [UInt8](repeating: 0, count: 32), peer = [UInt8](repeating: 0, count: 32), out = [UInt8](repeating: 0, count: 32)
    crypto_scalarmult_curve25519_base(&peer, ephemeral)
    for _ in 0..<iterations {
        _ = crypto_scalarmult_curve25519(&out, scalar, peer)        // es (read 1)
        _ = crypto_scalarmult_curve25519(&out, scalar, peer)        // ss (read 1)
        _ = crypto_scalarmult_curve25519_base(&point, ephemeral)    // e  (write 2)
        _ = crypto_scalarmult_curve25519(&out, ephemeral, peer)     // ee (write 2)
        _ = crypto_scalarmult_curve25519(&out, ephemeral, peer)     // se (write 2)
        blackHole(out)
        blackHole(point)
    }
}

@inline(never)
func encryptLoop(_ transport: NoiseTransport, _ plaintext: [UInt8], iterations: Int) {
    var t = transport
    for _ in 0..<iterations { blackHole(try! t.encrypt(plaintext)) }
}

@inline(never)
func encryptInPlaceLoop(_ transport: NoiseTransport, _ plaintext: [UInt8], iterations: Int) {
    var t = transport
    var buffer = plaintext + [UInt8](repeating: 0, count: NoiseLimits.tagLength)
    buffer.withUnsafeMutableBytes { raw in
        for _ in 0..<iterations { blackHole(try! t.encryptInPlace(raw, plaintextLength: plaintext.count)) }
    }
}

@inline(never)
func decryptLoop(_ transport: NoiseTransport, _ messages: [[UInt8]]) {
    var t = transport
    for message in messages { blackHole(try! t.decrypt(message)) }
}

@inline(never)
func decryptInPlaceLoop(_ transport: NoiseTransport, _ messages: inout [[UInt8]]) {
    var t = transport
    for index in messages.indices {
        messages[index].withUnsafeMutableBytes { blackHole(try! t.decryptInPlace($0)) }
    }
}

@inline(never)
func floorSeal(_ plaintext: [UInt8], iterations: Int) {
    let key = [UInt8](repeating: 7, count: 32)
    var nonce = [UInt8](repeating: 0, count: 12)
    var out = [UInt8](repeating: 0, count: plaintext.count + 16)
    for n in 0..<UInt64(iterations) {
        withUnsafeBytes(of: n.littleEndian) { for i in 0..<8 { nonce[4 + i] = $0[i] } }
        out.withUnsafeMutableBufferPointer { c in
            _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(c.baseAddress!, c.baseAddress! + plaintext.count, nil,
                                                                    plaintext, UInt64(plaintext.count), nil, 0, nil, nonce, key)
        }
        blackHole(out)
    }
}
