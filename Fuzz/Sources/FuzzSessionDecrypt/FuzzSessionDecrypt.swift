import Hush

// Stateful: arbitrary bytes delivered to an established session (and to a group member) as
// each message kind. Decryption must fail with a typed error and leave the stores unchanged,
// or succeed (the fuzzer rediscovered a genuine message, which cannot happen by chance).
struct Fixture: @unchecked Sendable {
    let alice = ProtocolAddress(name: "alice", deviceID: 1)
    let bob: InMemorySignalProtocolStore
    let group: SenderKeyName
    let suite: CipherSuite

    init(suite: CipherSuite) {
        self.suite = suite
        let random = SeededRandom(seed: 1)
        let aliceIdentity = try! IdentityKeyPair.generate(using: random)
        let bobIdentity = try! IdentityKeyPair.generate(using: random)
        let aliceStore = InMemorySignalProtocolStore(identity: aliceIdentity, registrationID: 1)
        bob = InMemorySignalProtocolStore(identity: bobIdentity, registrationID: 2)
        let spk = try! SignedPreKeyRecord.generate(id: 1, signedBy: bobIdentity, using: random)
        let otk = try! PreKeyRecord.generate(id: 7, using: random)
        bob.storeSignedPreKey(spk)
        bob.storePreKey(otk)
        let bundle = PreKeyBundle(registrationID: 2, deviceID: 1, identityKey: bobIdentity.identityKey,
                                  signedPreKey: spk.publicSignedPreKey, oneTimePreKey: otk.publicPreKey)
        let bobAddress = ProtocolAddress(name: "bob", deviceID: 1)
        try! SessionBuilder.process(bundle, for: bobAddress, store: aliceStore, suite: suite, random: random)
        let first = try! SessionCipher.encrypt([1, 2, 3], for: bobAddress, store: aliceStore)
        _ = try! SessionCipher.decrypt(first, from: alice, store: bob, random: random)
        group = SenderKeyName(groupID: "g", sender: alice)
        let distribution = try! GroupSessionBuilder.distributionMessage(for: group, store: aliceStore, random: random)
        try! GroupSessionBuilder.process(distribution, from: group, store: bob)
    }
}

nonisolated(unsafe) let fixtures = [Fixture(suite: .signalV3), Fixture(suite: .hush1)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for fixture in fixtures { check(bytes, fixture) }
    return 0
}

func check(_ bytes: [UInt8], _ fixture: Fixture) {
    let before = fixture.bob.snapshot()
    for kind in [CiphertextMessage.Kind.signal, .preKeySignal, .hush, .hushPreKey] {
        do {
            let message = try CiphertextMessage(kind: kind, serialized: bytes)
            _ = try SessionCipher.decrypt(message, from: fixture.alice, store: fixture.bob, random: SeededRandom(seed: 2))
            fatalError("forged message accepted")
        } catch {
            precondition(fixture.bob.snapshot() == before, "a failed decrypt changed the stores")
        }
    }
    do {
        _ = try GroupCipher.decrypt(bytes, from: fixture.group, store: fixture.bob)
        fatalError("forged group message accepted")
    } catch {
        precondition(fixture.bob.snapshot() == before, "a failed group decrypt changed the stores")
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzSessionDecrypt_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
