import Hush
import LibSignalPeer
import Synchronization
import Testing

/// A deterministic byte stream that both implementations can draw from identically: SHA-256
/// in counter mode over (seed, step, block), independent of how the draws are chunked. A
/// "step" restarts the stream, so each operation's draws do not depend on how many bytes
/// earlier operations drew (libsignal draws a ratchet key even in a decryption that then
/// fails; Hush does not).
final class StepRandom: RandomSource {
    private struct State { var step: UInt64 = 0; var offset: Int = 0; var block: [UInt8] = [] }
    private let seed: UInt64
    private let state = Mutex(State())

    init(seed: UInt64) { self.seed = seed }

    func begin(step: UInt64) { state.withLock { $0 = State(step: step, offset: 0, block: []) } }

    func next(_ count: Int) -> [UInt8] {
        state.withLock { s in
            var out: [UInt8] = []
            while out.count < count {
                let blockIndex = UInt64(s.offset / 32)
                var input = Array("hush-interop".utf8)
                for v in [seed, s.step, blockIndex] { withUnsafeBytes(of: v.littleEndian) { input += $0 } }
                let block = SHA256.hash(input)
                let start = s.offset % 32
                let take = min(32 - start, count - out.count)
                out += block[start..<(start + take)]
                s.offset += take
            }
            return out
        }
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        let bytes = next(buffer.count)
        buffer.copyBytes(from: bytes)
    }

    /// The same stream as a libsignal random callback.
    var libsignal: LibSignalParty.RandomSource { { [self] count in self.next(count) } }
}

/// A Hush device with in-memory stores.
final class HushDevice {
    let address: ProtocolAddress
    let identity: IdentityKeyPair
    let store: InMemorySignalProtocolStore
    let signedPreKey: SignedPreKeyRecord
    var preKeys: [UInt32: PreKeyRecord] = [:]
    let random: StepRandom

    init(_ name: String, seed: UInt64, identity: IdentityKeyPair? = nil, registrationID: UInt32? = nil,
         signedPreKey: SignedPreKeyRecord? = nil, preKeys: [PreKeyRecord]? = nil) throws {
        address = ProtocolAddress(name: name, deviceID: 1)
        random = StepRandom(seed: seed)
        let setup = SeededRandom(seed: seed)
        self.identity = try identity ?? IdentityKeyPair.generate(using: setup)
        store = InMemorySignalProtocolStore(identity: self.identity, registrationID: try registrationID ?? RegistrationID.generate(using: setup))
        self.signedPreKey = try signedPreKey ?? SignedPreKeyRecord.generate(id: 1, signedBy: self.identity, using: setup)
        store.storeSignedPreKey(self.signedPreKey)
        for key in try preKeys ?? PreKeyRecord.generate(ids: 1...20, using: setup) {
            store.storePreKey(key)
            self.preKeys[key.id] = key
        }
    }

    var libsignalAddress: LibSignalParty.Address { .init(name: address.name, deviceID: Int32(address.deviceID)) }

    func bundle(oneTimePreKeyID: UInt32?) -> LibSignalParty.PreKeyBundle {
        let otk = oneTimePreKeyID.flatMap { preKeys[$0] }
        return LibSignalParty.PreKeyBundle(
            registrationID: store.localRegistrationID(), deviceID: Int32(address.deviceID),
            identityKey: identity.identityKey.serialized, signedPreKeyID: signedPreKey.id,
            signedPreKey: signedPreKey.keyPair.publicKey.signalRepresentation, signedPreKeySignature: signedPreKey.signature,
            oneTimePreKeyID: otk?.id, oneTimePreKey: otk?.keyPair.publicKey.signalRepresentation)
    }

    func process(_ bundle: LibSignalParty.PreKeyBundle, from address: ProtocolAddress, step: UInt64) throws(SignalProtocolError) {
        random.begin(step: step)
        try SessionBuilder.process(hushBundle(bundle), for: address, store: store, random: random)
    }

    func encrypt(_ plaintext: [UInt8], to address: ProtocolAddress) throws(SignalProtocolError) -> (ciphertext: [UInt8], type: LibSignalParty.MessageType) {
        let m = try SessionCipher.encrypt(plaintext, for: address, store: store)
        return (m.serialized, m.kind == .preKeySignal ? .preKey : .whisper)
    }

    func decrypt(_ bytes: [UInt8], type: LibSignalParty.MessageType, from address: ProtocolAddress, step: UInt64) throws(SignalProtocolError) -> [UInt8] {
        random.begin(step: step)
        let message = try CiphertextMessage(kind: type == .preKey ? .preKeySignal : .signal, serialized: bytes)
        return try SessionCipher.decrypt(message, from: address, store: store, random: random)
    }
}

func hushBundle(_ b: LibSignalParty.PreKeyBundle) throws(SignalProtocolError) -> PreKeyBundle {
    do {
        let identity = try IdentityKey(serialized: b.identityKey)
        let spk = try Curve25519.KeyAgreement.PublicKey(signalRepresentation: b.signedPreKey)
        var otk: PreKeyBundle.OneTimePreKey?
        if let id = b.oneTimePreKeyID, let key = b.oneTimePreKey {
            otk = .init(id: id, publicKey: try Curve25519.KeyAgreement.PublicKey(signalRepresentation: key))
        }
        return PreKeyBundle(registrationID: b.registrationID, deviceID: UInt32(b.deviceID), identityKey: identity,
                            signedPreKey: .init(id: b.signedPreKeyID, publicKey: spk, signature: b.signedPreKeySignature),
                            oneTimePreKey: otk)
    } catch {
        throw .malformed(.invalidKey(field: 0))
    }
}

/// The outcome of a decryption, comparable across implementations: the plaintext or the
/// canonical error name of FORMAT.md §7.
enum Outcome: Equatable, CustomStringConvertible {
    case plaintext([UInt8])
    case error(String)

    var description: String {
        switch self {
        case .plaintext(let p): "plaintext(\(String(decoding: p, as: UTF8.self)))"
        case .error(let e): "error(\(e))"
        }
    }
}

func outcome(_ body: () throws -> [UInt8]) -> Outcome {
    do { return .plaintext(try body()) } catch let e as SignalProtocolError {
        return .error(e.transcriptName)
    } catch let e as LibSignalPeerError {
        return .error(e.canonical)
    } catch {
        return .error("other: \(error)")
    }
}
