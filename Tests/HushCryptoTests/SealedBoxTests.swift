import Foundation
import HushCrypto
import Testing

/// ``SealedBox`` (libsodium's `crypto_box_seal`): round trips, every refusal, and a box made by
/// PyNaCl's `SealedBox` (the vector "alice device 2 with a secret" of `TestVectors/client/link.json` format 1,
/// before link tokens; the box is still one PyNaCl made).
@Suite struct SealedBoxTests {
    static let privateKey = "70cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363753"
    static let sealed = "c861154642caaf9351c48e8c6c3769f42788a7c446cc330cd67d05ea36e94424427555df28d68293f72e70ad6afd9a2528c969d106b5c86845d7b4340fd5e03cc441ebabc2136709bc0e3b6b2db928e3c5105cffff5abf8568db8c762bef0888b2e1c2976783cacc8d8373d4b2f6d5102c5e72ec27cd9e02b6cd95ce0ffc75d068e42f2f421fc5307aaaf581791044be01bbb75c877704635e1ce0de"
    static let plaintext = "0105616c69636500000002b8a501b37267c06d8d20f316622f90a3e343e9e730771f2ce2e314b794e3185303d063e4e10bf8f823758885a6d28fd7d471888832170fc540249a9389c0314d05a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

    @Test func opensWhatPyNaClSealed() throws {
        let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try Hex.decode(Self.privateKey))
        let opened = try SealedBox.open(try Hex.decode(Self.sealed), keyPair: key)
        #expect(opened.withUnsafeBytes { Array($0) } == (try Hex.decode(Self.plaintext)))
    }

    @Test func roundTripAndRefusals() throws {
        let random = SeededRandom(seed: 5)
        let recipient = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let other = try Curve25519.KeyAgreement.PrivateKey(using: random)
        let message = Array("link me".utf8)
        let box = try SealedBox.seal(message, to: recipient.publicKey)
        #expect(box.count == message.count + SealedBox.overhead && SealedBox.overhead == 48)
        #expect(try SealedBox.open(box, keyPair: recipient).withUnsafeBytes { Array($0) } == message)
        // Fresh ephemeral key each time: two boxes of one message differ.
        #expect(try SealedBox.seal(message, to: recipient.publicKey) != box)
        #expect(try SealedBox.seal([UInt8](), to: recipient.publicKey).count == 48)
        #expect(throws: SealedBoxError.authenticationFailure) { try SealedBox.open(box, keyPair: other) }
        for i in [0, 31, 32, 47, 48, box.count - 1] {
            var changed = box
            changed[i] ^= 0x01
            #expect(throws: SealedBoxError.authenticationFailure) { try SealedBox.open(changed, keyPair: recipient) }
        }
        #expect(throws: SealedBoxError.tooShort(actual: 47)) { try SealedBox.open(Array(box.prefix(47)), keyPair: recipient) }
        #expect(throws: SealedBoxError.tooShort(actual: 0)) { try SealedBox.open([UInt8](), keyPair: recipient) }
    }
}
