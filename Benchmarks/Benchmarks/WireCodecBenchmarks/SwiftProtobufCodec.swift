// What Hush's wire codec would look like on swift-protobuf: the same framing, checks and
// results as `SignalMessage(serialized:)` / `PreKeySignalMessage(serialized:)` and their
// internal encoders (Sources/Hush/Wire/SignalMessage.swift), with the protobuf body handled by
// the generated `Hush_Wire_*` types (WhisperTextProtocol.pb.swift) instead of Hush's
// `ProtobufReader`/`ProtobufWriter`. Benchmarked against Hush's own parsers, so that the only
// difference between the two is the protobuf codec.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hush
import SwiftProtobuf

/// The result of a parse: what `Hush.SignalMessage` holds.
struct DecodedSignalMessage: Equatable {
    let version: UInt8
    let ratchetKey: Curve25519.KeyAgreement.PublicKey
    let counter: UInt32
    let previousCounter: UInt32
    let ciphertext: [UInt8]
    let serialized: [UInt8]
}

/// The result of a parse: what `Hush.PreKeySignalMessage` holds.
struct DecodedPreKeySignalMessage: Equatable {
    let version: UInt8
    let registrationID: UInt32
    let preKeyID: UInt32?
    let signedPreKeyID: UInt32
    let baseKey: Curve25519.KeyAgreement.PublicKey
    let identityKey: IdentityKey
    let message: DecodedSignalMessage
    let serialized: [UInt8]
}

enum SwiftProtobufWire {
    static let minimumSignalMessageByteCount = 10

    // MARK: Encoding (as `SignalMessage.init(ratchetKey:…)` and `PreKeySignalMessage.init(registrationID:…)`)

    /// `0x33 || protobuf`, with room reserved for the 8-byte MAC the caller appends (Hush's
    /// encoder reserves it the same way, then appends the MAC it computes over these bytes).
    static func encodeSignalMessage(
        ratchetKey: Curve25519.KeyAgreement.PublicKey, counter: UInt32, previousCounter: UInt32, ciphertext: [UInt8]
    ) throws -> [UInt8] {
        var message = Hush_Wire_SignalMessage()
        message.ratchetKey = Data(ratchetKey.signalRepresentation)
        message.counter = counter
        message.previousCounter = previousCounter
        message.ciphertext = Data(ciphertext)
        let body: [UInt8] = try message.serializedBytes()
        var wire = [UInt8]()
        wire.reserveCapacity(1 + body.count + SignalConstants.macByteCount)
        wire.append(SignalConstants.versionByte)
        wire.append(contentsOf: body)
        return wire
    }

    /// `0x33 || protobuf`, wrapping a complete serialized SignalMessage.
    static func encodePreKeySignalMessage(
        registrationID: UInt32, preKeyID: UInt32?, signedPreKeyID: UInt32,
        baseKey: Curve25519.KeyAgreement.PublicKey, identityKey: IdentityKey, message: [UInt8]
    ) throws -> [UInt8] {
        var outer = Hush_Wire_PreKeySignalMessage()
        if let preKeyID { outer.preKeyID = preKeyID }
        outer.baseKey = Data(baseKey.signalRepresentation)
        outer.identityKey = Data(identityKey.serialized)
        outer.message = Data(message)
        outer.registrationID = registrationID
        outer.signedPreKeyID = signedPreKeyID
        let body: [UInt8] = try outer.serializedBytes()
        var wire = [UInt8]()
        wire.reserveCapacity(1 + body.count)
        wire.append(SignalConstants.versionByte)
        wire.append(contentsOf: body)
        return wire
    }

    // MARK: Decoding (as `SignalMessage(serialized:)` and `PreKeySignalMessage(serialized:)`)

    static func decodeSignalMessage(_ bytes: some ContiguousByteBuffer) throws -> DecodedSignalMessage {
        try decodeSignalMessage(copied: bytes.bytes)
    }

    /// The parse proper, on bytes already copied out of the caller's buffer (Hush's parser makes
    /// the same one copy, which it keeps as `serialized`).
    private static func decodeSignalMessage(copied data: [UInt8]) throws -> DecodedSignalMessage {
        guard data.count >= minimumSignalMessageByteCount else { throw SignalProtocolError.malformed(.tooShort(data.count)) }
        let version = try checkVersion(data[0])
        let body = data.span.bytes.extracting(1..<(data.count - SignalConstants.macByteCount))
        let message: Hush_Wire_SignalMessage
        do { message = try Hush_Wire_SignalMessage(serializedBytes: body) } catch { throw SignalProtocolError.malformed(.invalidEncoding) }
        guard message.hasRatchetKey else { throw SignalProtocolError.malformed(.missingField(1)) }
        guard message.hasCounter else { throw SignalProtocolError.malformed(.missingField(2)) }
        guard message.hasCiphertext else { throw SignalProtocolError.malformed(.missingField(4)) }
        return DecodedSignalMessage(
            version: version, ratchetKey: try key(message.ratchetKey, field: 1), counter: message.counter,
            previousCounter: message.previousCounter, ciphertext: [UInt8](message.ciphertext), serialized: data)
    }

    static func decodePreKeySignalMessage(_ bytes: some ContiguousByteBuffer) throws -> DecodedPreKeySignalMessage {
        let data = bytes.bytes
        guard data.count >= 2 else { throw SignalProtocolError.malformed(.tooShort(data.count)) }
        let version = try checkVersion(data[0])
        let outer: Hush_Wire_PreKeySignalMessage
        do {
            outer = try Hush_Wire_PreKeySignalMessage(serializedBytes: data.span.bytes.extracting(1...))
        } catch { throw SignalProtocolError.malformed(.invalidEncoding) }
        guard outer.hasSignedPreKeyID else { throw SignalProtocolError.malformed(.missingField(6)) }
        guard outer.hasBaseKey else { throw SignalProtocolError.malformed(.missingField(2)) }
        guard outer.hasIdentityKey else { throw SignalProtocolError.malformed(.missingField(3)) }
        guard outer.hasMessage else { throw SignalProtocolError.malformed(.missingField(4)) }
        let baseKey = try key(outer.baseKey, field: 2)
        let identityKey = try key(outer.identityKey, field: 3)
        let message = try decodeSignalMessage(copied: [UInt8](outer.message))
        guard message.version == version else { throw SignalProtocolError.invalidVersion(message.version) }
        return DecodedPreKeySignalMessage(
            version: version, registrationID: outer.registrationID,
            preKeyID: outer.hasPreKeyID ? outer.preKeyID : nil, signedPreKeyID: outer.signedPreKeyID,
            baseKey: baseKey, identityKey: IdentityKey(publicKey: identityKey), message: message, serialized: data)
    }

    private static func checkVersion(_ byte: UInt8) throws -> UInt8 {
        let version = byte >> 4
        guard version >= SignalConstants.messageVersion else { throw SignalProtocolError.legacyVersion(version) }
        guard version == SignalConstants.messageVersion else { throw SignalProtocolError.invalidVersion(version) }
        return version
    }

    private static func key(_ bytes: Data, field: Int) throws -> Curve25519.KeyAgreement.PublicKey {
        // (HushCrypto's doc suggests `extension Data: ContiguousByteBuffer {}`; with its typed-throws
        // requirement that does not compile, so read Data through its own withUnsafeBytes.)
        do { return try bytes.withUnsafeBytes { raw in try Curve25519.KeyAgreement.PublicKey(signalRepresentation: raw) } } catch {
            throw SignalProtocolError.malformed(.invalidKey(field: field))
        }
    }
}
