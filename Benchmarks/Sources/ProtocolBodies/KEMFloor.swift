import Foundation
import enum Crypto.MLKEM1024

/// The KEM part of the PQXDH floor: swift-crypto's ML-KEM-1024 called directly on a key made
/// once (what any implementation over the same ML-KEM must pay per session).
final class KEMFloor: @unchecked Sendable {
    static let shared = KEMFloor()
    private let key = try! MLKEM1024.PrivateKey()
    private let publicKey: MLKEM1024.PublicKey
    private let ciphertext: Data

    private init() {
        publicKey = key.publicKey
        ciphertext = try! publicKey.encapsulate().encapsulated
    }

    /// Decoding the bundle's encapsulation key (the modulus check) and encapsulating.
    func encapsulate() {
        let decoded = try! MLKEM1024.PublicKey(rawRepresentation: publicKey.rawRepresentation)
        _ = try! decoded.encapsulate()
    }

    /// Decapsulating a 1,568-byte ciphertext.
    func decapsulate() { _ = try! key.decapsulate(ciphertext) }
}
