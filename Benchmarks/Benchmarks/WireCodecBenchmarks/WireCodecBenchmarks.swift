// Does a well-kept protobuf library (apple/swift-protobuf) cost more than the cryptography of a
// steady-state encrypt? Measured here against Hush's hand-written wire codec.
//
// Rows (every one per operation: 1000 operations per sample, scaled back to one):
//   crypto     the primitive calls of one steady-state SessionCipher encrypt of 100 bytes
//   spb-pure   swift-protobuf alone on the protobuf body (prebuilt message / body bytes)
//   spb-hush   swift-protobuf inside a Hush-shaped codec (SwiftProtobufCodec.swift): framing,
//              required-field checks, keys and byte arrays out, exactly what Hush's parsers return
//   hush       Hush's public parsers (hand codec). Hush's encoder is internal: not measurable here.
//   baseline   an empty loop: what the harness itself adds per operation
//
// The fixture: ratchet key 33 B, counter 7, previous counter 3, 112 B ciphertext (100 B padded)
// => SignalMessage 0x33 || 153 B body || 8 B MAC = 162 B; a PreKeySignalMessage (one-time prekey
// id 31337, signed prekey id 42, registration id 12345) wrapping it: 0x33 || 244 B body.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Benchmark
import Hush
import SwiftProtobuf

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 10_000
    )

    // MARK: Fixture

    let random = SeededRandom(seed: 7)
    let ratchetKey = try! Curve25519.KeyAgreement.PrivateKey(using: random).publicKey
    let baseKey = try! Curve25519.KeyAgreement.PrivateKey(using: random).publicKey
    let alice = IdentityKey(publicKey: try! Curve25519.KeyAgreement.PrivateKey(using: random).publicKey)
    let bob = IdentityKey(publicKey: try! Curve25519.KeyAgreement.PrivateKey(using: random).publicKey)
    let chainKey = try! SymmetricKey(using: random)
    let (counter, previousCounter): (UInt32, UInt32) = (7, 3)
    let (registrationID, preKeyID, signedPreKeyID): (UInt32, UInt32, UInt32) = (12345, 31337, 42)

    let plaintext = [UInt8](repeating: 0x61, count: 100)
    let messageKeySeed: [UInt8] = [0x01], chainKeySeed: [UInt8] = [0x02]
    let messageKeysInfo = Array("WhisperMessageKeys".utf8), noSalt = [UInt8]()
    let identities = alice.serialized + bob.serialized

    // One real encrypt's keys and ciphertext.
    let material = try! HKDF.deriveKey(
        inputKeyMaterial: HMACSHA256.secureAuthenticationCode(for: messageKeySeed, using: chainKey),
        salt: noSalt, info: messageKeysInfo, outputByteCount: 80)
    let ciphertext = material.withUnsafeBytes { m in
        try! AES.CBC.encrypt(plaintext, key: UnsafeRawBufferPointer(rebasing: m[0..<32]), iv: UnsafeRawBufferPointer(rebasing: m[64..<80]))
    }
    precondition(ciphertext.count == 112)

    // swift-protobuf's messages, built once for the pure rows.
    var pbSignal = Hush_Wire_SignalMessage()
    pbSignal.ratchetKey = Data(ratchetKey.signalRepresentation)
    pbSignal.counter = counter
    pbSignal.previousCounter = previousCounter
    pbSignal.ciphertext = Data(ciphertext)
    let signalBody: [UInt8] = try! pbSignal.serializedBytes()
    // The layout Hush writes (fields in number order, as libsignal-protocol-c does).
    precondition(signalBody == [0x0A, 0x21] + ratchetKey.signalRepresentation + [0x10, 7, 0x18, 3, 0x22, 0x70] + ciphertext)
    let signalUnmacced = [SignalConstants.versionByte] + signalBody
    let macInput = identities + signalUnmacced  // 66 + 154 = 220 bytes
    let mac = material.withUnsafeBytes { m in
        Array(HMACSHA256.authenticationCode(for: macInput, using: UnsafeRawBufferPointer(rebasing: m[32..<64]))[0..<8])
    }
    let signalWire = signalUnmacced + mac
    precondition(signalWire.count == 162 && macInput.count == 220)

    var pbPreKey = Hush_Wire_PreKeySignalMessage()
    pbPreKey.preKeyID = preKeyID
    pbPreKey.baseKey = Data(baseKey.signalRepresentation)
    pbPreKey.identityKey = Data(alice.serialized)
    pbPreKey.message = Data(signalWire)
    pbPreKey.registrationID = registrationID
    pbPreKey.signedPreKeyID = signedPreKeyID
    let preKeyBody: [UInt8] = try! pbPreKey.serializedBytes()
    precondition(preKeyBody == [0x08, 0xE9, 0xF4, 0x01, 0x12, 0x21] + baseKey.signalRepresentation + [0x1A, 0x21] + alice.serialized
        + [0x22, 0xA2, 0x01] + signalWire + [0x28, 0xB9, 0x60, 0x30, 42])
    let preKeyWire = [SignalConstants.versionByte] + preKeyBody
    precondition(preKeyWire.count == 245)

    // Both codecs agree on these bytes, both ways.
    let hushSignal = try! SignalMessage(serialized: signalWire)
    precondition(hushSignal.ratchetKey == ratchetKey && hushSignal.counter == counter
        && hushSignal.previousCounter == previousCounter && hushSignal.ciphertext == ciphertext)
    let spbSignal = try! SwiftProtobufWire.decodeSignalMessage(signalWire)
    precondition(spbSignal == DecodedSignalMessage(
        version: hushSignal.version, ratchetKey: hushSignal.ratchetKey, counter: hushSignal.counter,
        previousCounter: hushSignal.previousCounter, ciphertext: hushSignal.ciphertext, serialized: hushSignal.serialized))
    precondition(try! SwiftProtobufWire.encodeSignalMessage(
        ratchetKey: ratchetKey, counter: counter, previousCounter: previousCounter, ciphertext: ciphertext) == signalUnmacced)

    let hushPreKey = try! PreKeySignalMessage(serialized: preKeyWire)
    precondition(hushPreKey.registrationID == registrationID && hushPreKey.preKeyID == preKeyID
        && hushPreKey.signedPreKeyID == signedPreKeyID && hushPreKey.baseKey == baseKey
        && hushPreKey.identityKey == alice && hushPreKey.message == hushSignal)
    let spbPreKey = try! SwiftProtobufWire.decodePreKeySignalMessage(preKeyWire)
    precondition(spbPreKey.registrationID == registrationID && spbPreKey.preKeyID == preKeyID
        && spbPreKey.signedPreKeyID == signedPreKeyID && spbPreKey.baseKey == baseKey
        && spbPreKey.identityKey == alice && spbPreKey.message == spbSignal && spbPreKey.serialized == preKeyWire)
    precondition(try! SwiftProtobufWire.encodePreKeySignalMessage(
        registrationID: registrationID, preKeyID: preKeyID, signedPreKeyID: signedPreKeyID,
        baseKey: baseKey, identityKey: alice, message: signalWire) == preKeyWire)

    // MARK: The cryptography of one steady-state encrypt

    // SessionState.encrypt: KDF_CK (message key seed, next chain key), HKDF to 80 bytes of
    // message keys, AES-256-CBC of the plaintext, HMAC-SHA256 over IK_A || IK_B || message.
    Benchmark("crypto: steady-state encrypt of 100 B (2 HMAC, HKDF 80 B, AES-CBC, MAC over 220 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            let seed = HMACSHA256.secureAuthenticationCode(for: messageKeySeed, using: chainKey)
            let next = HMACSHA256.secureAuthenticationCode(for: chainKeySeed, using: chainKey)
            let keys = try! HKDF.deriveKey(inputKeyMaterial: seed, salt: noSalt, info: messageKeysInfo, outputByteCount: 80)
            let (body, tag) = keys.withUnsafeBytes { m in
                (try! AES.CBC.encrypt(plaintext, key: UnsafeRawBufferPointer(rebasing: m[0..<32]), iv: UnsafeRawBufferPointer(rebasing: m[64..<80])),
                 HMACSHA256.authenticationCode(for: macInput, using: UnsafeRawBufferPointer(rebasing: m[32..<64])))
            }
            blackHole(next)
            blackHole(body)
            blackHole(tag)
        }
    }

    // MARK: swift-protobuf alone

    Benchmark("spb-pure: SignalMessage serialize (prebuilt message -> [UInt8])") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! pbSignal.serializedBytes() as [UInt8]) }
    }
    Benchmark("spb-pure: SignalMessage parse (153 B body)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! Hush_Wire_SignalMessage(serializedBytes: signalBody)) }
    }
    Benchmark("spb-pure: PreKeySignalMessage serialize (prebuilt message -> [UInt8])") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! pbPreKey.serializedBytes() as [UInt8]) }
    }
    Benchmark("spb-pure: PreKeySignalMessage parse (244 B body, inner left as bytes)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! Hush_Wire_PreKeySignalMessage(serializedBytes: preKeyBody)) }
    }

    // MARK: swift-protobuf in a Hush-shaped codec

    Benchmark("spb-hush: SignalMessage encode (fields -> 0x33 || body)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! SwiftProtobufWire.encodeSignalMessage(
                ratchetKey: ratchetKey, counter: counter, previousCounter: previousCounter, ciphertext: ciphertext))
        }
    }
    Benchmark("spb-hush: SignalMessage decode (162 B wire -> checked fields)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! SwiftProtobufWire.decodeSignalMessage(signalWire)) }
    }
    Benchmark("spb-hush: SignalMessage encode + decode") { benchmark in
        for _ in benchmark.scaledIterations {
            var wire = try! SwiftProtobufWire.encodeSignalMessage(
                ratchetKey: ratchetKey, counter: counter, previousCounter: previousCounter, ciphertext: ciphertext)
            wire.append(contentsOf: mac)
            blackHole(try! SwiftProtobufWire.decodeSignalMessage(wire))
        }
    }
    Benchmark("spb-hush: PreKeySignalMessage encode (wraps the 162 B message)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! SwiftProtobufWire.encodePreKeySignalMessage(
                registrationID: registrationID, preKeyID: preKeyID, signedPreKeyID: signedPreKeyID,
                baseKey: baseKey, identityKey: alice, message: signalWire))
        }
    }
    Benchmark("spb-hush: PreKeySignalMessage decode (245 B wire, outer + inner)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! SwiftProtobufWire.decodePreKeySignalMessage(preKeyWire)) }
    }

    // MARK: Hush's hand codec (public parsers only; the encoder is internal)

    Benchmark("hush: SignalMessage(serialized:) (162 B wire)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! SignalMessage(serialized: signalWire)) }
    }
    Benchmark("hush: PreKeySignalMessage(serialized:) (245 B wire, outer + inner)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! PreKeySignalMessage(serialized: preKeyWire)) }
    }

    // MARK: Harness

    Benchmark("baseline: empty loop") { benchmark in
        for i in benchmark.scaledIterations { blackHole(i) }
    }
}
