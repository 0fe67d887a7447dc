@testable import HushCrypto
import Testing

/// HushCrypto's HMAC (RFC 2104 on libcrypto's SHA-256) against libcrypto's own `EVP_MAC`.
@Suite struct HMACDifferentialTests {
    @Test func matchesEVPMACOnRandomInputs() throws {
        var generator = SystemRandomNumberGenerator()
        // Key lengths around the 64-byte block boundary, message lengths around SHA-256's.
        for keyLength in [0, 1, 16, 32, 55, 63, 64, 65, 100, 131, 200] {
            for messageLength in [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000] {
                let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let fast = HMACSHA256.authenticationCode(for: message, using: key)
                let reference = try HMACSHA256.referenceEVP(key: key, message: message)
                #expect(fast == reference, "key \(keyLength) message \(messageLength)")
            }
        }
    }

    @Test func concurrentUseFromManyTasks() async throws {
        let key = [UInt8](repeating: 0x11, count: 32)
        let expected = try HMACSHA256.referenceEVP(key: key, message: [1, 2, 3])
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    (0..<200).allSatisfy { _ in HMACSHA256.authenticationCode(for: [1, 2, 3], using: key) == expected }
                        && SHA256.hash([1, 2, 3]) == SHA256.hash([1, 2, 3])
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
