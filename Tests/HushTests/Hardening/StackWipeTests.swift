import Foundation
@testable import Hush
import Testing

/// Secrets derived in stack scratch do not outlive the function that derived them (issue 14,
/// defect 2). A zeroing store to stack memory that is never read again is removed by `-O`, so
/// this test is meant for release builds (`swift test -c release -Xswiftc -enable-testing
/// --filter StackWipeTests`); it runs in debug builds too. It copies the thread's own stack
/// below the current frame after the functions returned and looks for the secrets — no
/// global hook, so suites running in parallel cannot disturb it.
@Suite struct StackWipeTests {
    @Test func noDerivedKeyRemainsOnTheStack() throws {
        final class Findings: @unchecked Sendable { var list: [String] = [] }  // written by the thread before `signal`
        let findings = Findings()
        let done = DispatchSemaphore(value: 0)
        // A thread of our own with a 1 MiB stack: the 64 KiB copied below the frame are mapped.
        let thread = Thread {
            // Warm-up with another key: the first call through each lazily bound symbol runs the
            // dynamic linker's resolver, which saves every vector register (whatever a previous
            // memmove or SHA-256 left there) on the stack. That is the loader's, not a skipped wipe.
            _ = Self.deriveAndScan([UInt8](repeating: 0x11, count: 32))
            findings.list = Self.deriveAndScan((0..<32).map { UInt8($0) &* 29 &+ 7 })
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
        done.wait()
        #expect(findings.list.isEmpty, "secrets left on the stack: \(findings.list)")
    }

    static let scanned = 65536

    /// Runs every stack-scratch derivation, then looks for what they derived on the stack.
    @inline(never)
    static func deriveAndScan(_ chainKeyBytes: [UInt8]) -> [String] {
        let chainKey = ChainKey(key: SecureBytes(copying: chainKeyBytes), index: 0)
        // What must not remain, computed through heap-only paths.
        let seed = HMACSHA256.authenticationCode(for: [SignalConstants.messageKeySeed], using: chainKeyBytes)
        let prk = HMACSHA256.authenticationCode(for: seed, using: [UInt8](repeating: 0, count: 32))
        let material = try! HKDF.deriveKey(inputKeyMaterial: seed, salt: [UInt8](), info: CipherSuite.signalV3.messageKeysInfo,
                                           outputByteCount: CipherSuite.signalV3.messageKeyMaterialByteCount).bytes
        let next = HMACSHA256.authenticationCode(for: [SignalConstants.chainKeySeed], using: chainKeyBytes)
        let secrets = ["message key seed": seed, "HKDF PRK": prk, "message key material": material, "next chain key": next]
        // The copy buffer is allocated first: once a derivation returned, nothing may call deeper
        // into the stack (no allocation, no release) before the dead region is copied out. Each
        // derivation is checked alone, since the next one would reuse (overwrite) its stack.
        let copy = UnsafeMutableRawPointer.allocate(byteCount: scanned, alignment: 16)
        defer { copy.deallocate() }
        var found: [String] = []
        for derivation in Derivation.allCases {
            let keptAlive = runDerivation(derivation, chainKey)
            copyStack(into: copy)
            withExtendedLifetime(keptAlive) {}
            found += search(UnsafeRawBufferPointer(start: copy, count: scanned), for: secrets).map { "\(derivation): \($0)" }
        }
        return found
    }

    enum Derivation: CaseIterable { case withMessageKeys, messageKeys, advance }

    /// One function under test, in its own frame below the scanner's. What it produced is
    /// returned, so that releasing it does not run (and overwrite the stack) before the copy.
    @inline(never)
    static func runDerivation(_ derivation: Derivation, _ chainKey: ChainKey) -> (UInt8, MessageKeys?, ChainKey?) {
        switch derivation {
        case .withMessageKeys:
            return (chainKey.withMessageKeys(suite: .signalV3) { material in material[0] }, nil, nil)
        case .messageKeys:
            return (0, chainKey.messageKeys(suite: .signalV3), nil)
        case .advance:
            var advancing = ChainKey(key: SecureBytes(copying: chainKey.key), index: 0)
            advancing.advance()
            return (0, nil, advancing)
        }
    }

    /// Copies the `scanned` bytes of stack below this frame (one `memcpy`, before anything else).
    @inline(never)
    static func copyStack(into copy: UnsafeMutableRawPointer) {
        var marker: UInt8 = 0
        let top = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        memcpy(copy, UnsafeRawPointer(bitPattern: top - UInt(scanned))!, scanned)
    }

    /// Which secrets have a 16-byte window in the copied stack.
    static func search(_ stack: UnsafeRawBufferPointer, for secrets: [String: [UInt8]]) -> [String] {
        var found: [String] = []
        for (name, secret) in secrets.sorted(by: { $0.key < $1.key }) {
            let windows = stride(from: 0, through: secret.count - 16, by: 8).map { Array(secret[$0..<($0 + 16)]) }
            outer: for offset in 0..<(stack.count - 16) {
                for (w, window) in windows.enumerated() where stack[offset] == window[0] {
                    if (0..<16).allSatisfy({ stack[offset + $0] == window[$0] }) {
                        found.append("\(name)[\(w * 8)..<\(w * 8 + 16)] at sp-\(stack.count - offset)")
                        break outer
                    }
                }
            }
        }
        return found
    }
}
