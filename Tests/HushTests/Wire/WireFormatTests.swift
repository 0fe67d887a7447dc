import Hush
import Testing

/// The PreKeySignalMessage of step 1 of libsignal-protocol-c's `basic-seed1` transcript
/// (FORMAT.md §10), used as a known-good input.
let libsignalPreKeyMessage = hex(
    "330865122105f4aa5869d896fae61d66b286cc3c8e3bb09416798a69ddedbe7a9e22a64cfe2d1a21056de86412c50d779c7ef93f5a410f4c392417c6c83f543f200c52ce7f963aca532252330a2105998a7beec19371c05006c64425e369c3e758904afe4aac3db674723e219b0a2e1000180022206653644a2575c552a1d543e6b6aa53e40d336349928353758ad9cd931c7cecd3e906a12066addedd28fa4f3001")

@Suite struct WireFormatTests {
    @Test func parsesLibsignalPreKeyMessageFieldByField() throws {
        let message = try PreKeySignalMessage(serialized: libsignalPreKeyMessage)
        #expect(message.version == 3)
        #expect(message.preKeyID == 101)
        #expect(message.signedPreKeyID == 1)
        #expect(message.registrationID == 10234)
        #expect(message.baseKey.signalRepresentation == hex("05f4aa5869d896fae61d66b286cc3c8e3bb09416798a69ddedbe7a9e22a64cfe2d"))
        #expect(message.identityKey.serialized == hex("056de86412c50d779c7ef93f5a410f4c392417c6c83f543f200c52ce7f963aca53"))
        let inner = message.message
        #expect(inner.counter == 0)
        #expect(inner.previousCounter == 0)
        #expect(inner.ratchetKey.signalRepresentation == hex("05998a7beec19371c05006c64425e369c3e758904afe4aac3db674723e219b0a2e"))
        #expect(inner.ciphertext == hex("6653644a2575c552a1d543e6b6aa53e40d336349928353758ad9cd931c7cecd3"))
        #expect(inner.serialized.suffix(8) == hex("e906a12066addedd")[...])
        #expect(message.serialized == libsignalPreKeyMessage)
    }

    @Test func messagesHushProducesHaveLibsignalsFieldOrderAndZeroFields() throws {
        let alice = Device("alice", seed: 11)
        let bob = Device("bob", seed: 12)
        try alice.startSession(with: bob)
        guard case .preKeySignal(let first) = try alice.encrypt("x", to: bob) else { Issue.record("expected a prekey message"); return }
        let bytes = first.serialized
        // 0x33, field 1 (otk id 100 = 0x64), field 2 (33-byte base key), field 3 (identity), field 4 (message)
        #expect(Array(bytes[0..<5]) == [0x33, 0x08, 0x64, 0x12, 0x21])
        #expect(bytes[5] == 0x05)
        #expect(Array(bytes[38..<41]) == [0x1A, 0x21, 0x05])
        #expect(Array(bytes[73..<75]) == [0x22, UInt8(first.message.serialized.count)])
        // The inner message: 0x33, 0a 21 05 <key>, then counter 0 and previous counter 0 are still emitted.
        let inner = first.message.serialized
        #expect(Array(inner[0..<4]) == [0x33, 0x0A, 0x21, 0x05])
        #expect(Array(inner[36..<40]) == [0x10, 0x00, 0x18, 0x00])
        #expect(inner[40] == 0x22)
        // Trailing fields 5 (registration id) and 6 (signed prekey id 1).
        #expect(Array(bytes.suffix(2)) == [0x30, 0x01])
    }

    @Test func versionAndLengthRules() {
        var m = libsignalPreKeyMessage
        #expect(throws: SignalProtocolError.malformed(.tooShort(1))) { try PreKeySignalMessage(serialized: [0x33]) }
        m[0] = 0x43
        #expect(throws: SignalProtocolError.invalidVersion(4)) { try PreKeySignalMessage(serialized: m) }
        m[0] = 0x23
        #expect(throws: SignalProtocolError.legacyVersion(2)) { try PreKeySignalMessage(serialized: m) }
        m[0] = 0x13
        #expect(throws: SignalProtocolError.legacyVersion(1)) { try PreKeySignalMessage(serialized: m) }

        let inner = Array(libsignalPreKeyMessage[75..<157])
        #expect(inner.first == 0x33)
        #expect(throws: SignalProtocolError.malformed(.tooShort(9))) { try SignalMessage(serialized: inner.prefix(9)) }
        var low = inner
        low[0] = 0x32  // the low nibble is not checked by the parser: the MAC covers it
        #expect((try? SignalMessage(serialized: low)) != nil)
        #expect(throws: SignalProtocolError.malformed(.invalidEncoding)) { try SignalMessage(serialized: inner.dropLast()) }
    }

    @Test func requiredFieldsAndKeys() {
        // SignalMessage with only field 2 and a fake MAC: field 1 is missing.
        let noKey: [UInt8] = [0x33, 0x10, 0x00, 0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.missingField(1))) { try SignalMessage(serialized: noKey) }
        let key = [0x05] + [UInt8](repeating: 9, count: 32)
        let noCounter: [UInt8] = [0x33, 0x0A, 0x21] + key + [0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.missingField(2))) { try SignalMessage(serialized: noCounter) }
        let noBody: [UInt8] = [0x33, 0x0A, 0x21] + key + [0x10, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.missingField(4))) { try SignalMessage(serialized: noBody) }
        var badType = key
        badType[0] = 0x06
        let wrongKey: [UInt8] = [0x33, 0x0A, 0x21] + badType + [0x10, 0x00, 0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 1))) { try SignalMessage(serialized: wrongKey) }
        let shortKey: [UInt8] = [0x33, 0x0A, 0x20] + key.prefix(32) + [0x10, 0x00, 0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 1))) { try SignalMessage(serialized: shortKey) }
        var highBit = key
        highBit[32] |= 0x80  // same X25519 key, non-canonical encoding
        let nonCanonical: [UInt8] = [0x33, 0x0A, 0x21] + highBit + [0x10, 0x00, 0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 1))) { try SignalMessage(serialized: nonCanonical) }
        let aboveP: [UInt8] = [0x33, 0x0A, 0x21, 0x05, 0xEE] + [UInt8](repeating: 0xFF, count: 30) + [0x7F, 0x10, 0x00, 0x22, 0x00] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidKey(field: 1))) { try SignalMessage(serialized: aboveP) }
        // Unknown fields of every skippable wire type are ignored; groups are not.
        let unknown: [UInt8] = [0x33, 0x0A, 0x21] + key + [0x10, 0x07, 0x22, 0x00, 0x78, 0x01, 0x79] + [UInt8](repeating: 0, count: 8)
            + [0x7D, 1, 2, 3, 4, 0x7A, 0x01, 0xFF] + [UInt8](repeating: 0, count: 8)
        #expect((try? SignalMessage(serialized: unknown))?.counter == 7)
        let group: [UInt8] = [0x33, 0x0A, 0x21] + key + [0x10, 0x00, 0x22, 0x00, 0x7B] + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidEncoding)) { try SignalMessage(serialized: group) }
        let overlong: [UInt8] = [0x33, 0x10] + [UInt8](repeating: 0xFF, count: 11) + [UInt8](repeating: 0, count: 8)
        #expect(throws: SignalProtocolError.malformed(.invalidEncoding)) { try SignalMessage(serialized: overlong) }
    }

    @Test func innerVersionMustMatch() throws {
        var m = libsignalPreKeyMessage
        m[75] = 0x43  // the inner SignalMessage's version byte
        #expect(throws: SignalProtocolError.invalidVersion(4)) { try PreKeySignalMessage(serialized: m) }
    }

    /// Every decoder is total: truncations, single-byte changes and random strings give a
    /// message or a typed error.
    @Test func decodersAreTotal() {
        let random = SeededRandom(seed: 77)
        var inputs: [[UInt8]] = []
        for n in 0...libsignalPreKeyMessage.count { inputs.append(Array(libsignalPreKeyMessage.prefix(n))) }
        for i in libsignalPreKeyMessage.indices {
            for delta: UInt8 in [0x01, 0x80, 0xFF] {
                var m = libsignalPreKeyMessage
                m[i] ^= delta
                inputs.append(m)
            }
        }
        for _ in 0..<3000 {
            let lengthByte = try! random.secureBytes(count: 1).bytes[0]
            var bytes = try! random.secureBytes(count: Int(lengthByte)).bytes
            if !bytes.isEmpty { bytes[0] = 0x33 }
            inputs.append(bytes)
        }
        var decoded = 0
        for input in inputs {
            if expectParse(input, "SignalMessage", { (b: [UInt8]) throws(SignalProtocolError) in try SignalMessage(serialized: b) }, encoded: \.serialized) { decoded += 1 }
            if expectParse(input, "PreKeySignalMessage", { (b: [UInt8]) throws(SignalProtocolError) in try PreKeySignalMessage(serialized: b) }, encoded: \.serialized) { decoded += 1 }
            expectParse(input, "CiphertextMessage", { (b: [UInt8]) throws(SignalProtocolError) in try CiphertextMessage(kind: .signal, serialized: b) }, encoded: \.serialized)
            // Nothing here starts with a record's magic ("HSR"): always the typed format error.
            #expect(throws: SessionRecordError.unsupportedFormat(version: nil)) { try SessionRecord(serialized: input) }
        }
        // The genuine message and some of its bit flips in unauthenticated places decode.
        #expect(decoded >= 1)
    }
}
