import Foundation
import HushNoise

// The Noise handshake reader and the transport decryption, on arbitrary bytes. The first input
// byte picks the reader (modulo 8), the rest is the message:
//   0, 1, 2  a responder of XX, IK, NK reading a first message
//   3, 4, 5  an initiator of XX, IK, NK that sent its first message, reading the response
//   6        an XX responder that answered, reading the third message
//   7        an established transport decrypting a message (copying and in place)
// Every input must give a payload or a typed NoiseError, and a refusal must leave the reader as
// it was. Only the genuine message (or, for XX's unauthenticated first message, any message
// with a usable key) may be accepted: anything else would be a forgery.
//
// `FuzzNoise --write-seeds DIR` writes the genuine messages of every mode (the seed corpus in
// corpus/FuzzNoise) and exits.
struct Fixture: @unchecked Sendable {
    var readers: [NoiseHandshake] = []
    var genuine: [[UInt8]] = []
    var transport: NoiseTransport
    var transportGenuine: [UInt8]

    init() {
        let initiatorKey = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 1))
        let responderKey = try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 2))
        func pair(_ pattern: NoisePattern) -> (NoiseHandshake, NoiseHandshake) {
            let i = try! NoiseHandshake(pattern: pattern, role: .initiator, prologue: Array("fuzz".utf8), localStatic: initiatorKey,
                                        remoteStatic: responderKey.publicKey, random: SeededRandom(seed: 3))
            let r = try! NoiseHandshake(pattern: pattern, role: .responder, prologue: Array("fuzz".utf8), localStatic: responderKey,
                                        random: SeededRandom(seed: 4))
            return (i, r)
        }
        let payload = Array("payload".utf8)
        // 0-2: responders before the first message.
        var firsts: [[UInt8]] = []
        for pattern in NoisePattern.allCases {
            var (i, r) = pair(pattern)
            readers.append(r)
            let first = try! i.writeMessage(payload: payload)
            genuine.append(first)
            firsts.append(first)
            _ = try! r.readMessage(first)
        }
        // 3-5: initiators waiting for the response.
        var xxAfterTwo: (NoiseHandshake, NoiseHandshake)? = nil
        for pattern in NoisePattern.allCases {
            var (i, r) = pair(pattern)
            _ = try! r.readMessage(try! i.writeMessage(payload: payload))
            readers.append(i)
            let second = try! r.writeMessage(payload: payload)
            genuine.append(second)
            if pattern == .xx {
                var i2 = i
                _ = try! i2.readMessage(second)
                xxAfterTwo = (i2, r)
            }
        }
        // 6: the XX responder waiting for the third message.
        var (i3, r3) = xxAfterTwo!
        readers.append(r3)
        let third = try! i3.writeMessage(payload: payload)
        genuine.append(third)
        _ = try! r3.readMessage(third)
        // 7: a transport.
        var sender = try! i3.split()
        transport = try! r3.split()
        transportGenuine = try! sender.encrypt(payload)
        genuine.append(transportGenuine)
    }
}

nonisolated(unsafe) let fixture = Fixture()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let mode = Int(data[0] % 8)
    let message = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if mode < 7 {
        var reader = fixture.readers[mode]
        do {
            _ = try reader.readMessage(message)
            precondition(mode == 0 || message == fixture.genuine[mode], "mode \(mode): a forged handshake message was accepted")
        } catch {
            precondition(reader.handshakeHash == fixture.readers[mode].handshakeHash, "a refused message changed the handshake")
            precondition(reader.isMyTurnToWrite == fixture.readers[mode].isMyTurnToWrite)
        }
    } else {
        var transport = fixture.transport
        let accepted: Bool
        do { _ = try transport.decrypt(message); accepted = true } catch { accepted = false }
        precondition(!accepted || message == fixture.transportGenuine, "a forged transport message was accepted")
        precondition(accepted || transport.receivingNonce == 0, "a refused transport message moved the nonce")
        var inPlace = fixture.transport
        var buffer = message
        let acceptedInPlace: Bool
        do { _ = try buffer.withUnsafeMutableBytes { try inPlace.decryptInPlace($0) }; acceptedInPlace = true } catch { acceptedInPlace = false }
        precondition(acceptedInPlace == accepted, "in-place and copying decryption disagree")
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzNoise_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let arguments = (0..<Int(argc)).compactMap { argv?[$0].map { String(cString: $0) } }
    if arguments.count == 3, arguments[1] == "--write-seeds" {
        let names = ["xx-responder-1", "ik-responder-1", "nk-responder-1", "xx-initiator-2", "ik-initiator-2", "nk-initiator-2",
                     "xx-responder-3", "transport"]
        for (mode, message) in fixture.genuine.enumerated() {
            let url = URL(fileURLWithPath: arguments[2]).appendingPathComponent("\(names[mode]).bin")
            try! Data([UInt8(mode)] + message).write(to: url)
        }
        return 0
    }
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
