import Foundation
import Hush
import HushClient

// Any bytes: a restored backup or a typed BackupError, never a crash (Docs/spec/backup.md).
// Each input is tried twice: as a whole file (header parsing, limits, key check), and as the
// record stream of an authentic file — encrypted here from the spec alone (§3, with a fixed
// recovery key, so no Argon2id) as one final chunk — which reaches the record decoders.
let digits = String(repeating: "0123456789", count: 7).prefix(64)
let key = try! RecoveryKey(parsing: String(digits))
let salt = [UInt8](repeating: 0x5A, count: 16)
let k = try! HKDF.deriveKey(inputKeyMaterial: Array(digits.utf8), salt: salt, info: Array("hush-backup/1 recovery key".utf8), outputByteCount: 32)
let check = try! HKDF.expand(pseudoRandomKey: k, info: Array("hush-backup/1 key check".utf8), outputByteCount: 16)
let streamKey = try! HKDF.expand(pseudoRandomKey: k, info: Array("hush-backup/1 stream key".utf8), outputByteCount: 32)
let config: ClientConfiguration = {
    var c = ClientConfiguration(endpoint: RelayEndpoint(host: "127.0.0.1", port: 1), trustRoot: try! Curve25519.KeyAgreement.PrivateKey().publicKey)
    c.preKeyBatch = 1
    c.kyberPreKeyBatch = 1
    return c
}()
/// A valid profile record (spec §4), so that streams starting after it reach the other records.
let profile: [UInt8] = {
    let identity = try! IdentityKeyPair.generate(using: SeededRandom(seed: 1))
    var body: [UInt8] = [4] + Array("fuzz".utf8) + [0, 0, 0, 1, 0, 0, 0, 7] + identity.identityKey.serialized
    body += identity.privateKey.rawRepresentation.withUnsafeBytes { Array($0) }
    body += try! Curve25519.KeyAgreement.PrivateKey(using: SeededRandom(seed: 2)).rawRepresentation.withUnsafeBytes { Array($0) }
    body += [UInt8](repeating: 0, count: 31) + [1]
    return [0x01, 0, 0, 0, UInt8(body.count)] + body
}()

func restore(_ file: [UInt8]) {
    _ = try? HushBackup.restore(from: BackupBytesSource(file), secret: .recoveryKey(key), configuration: config) { p in
        InMemoryClientStore(identity: p.identity, registrationID: p.registrationID)
    }
}

func authentic(_ stream: [UInt8]) -> [UInt8] {
    let e = try! SecretStream.Encryptor(key: streamKey)
    var header = Array("HUSHBKUP".utf8) + [1, 2, 0, 0, 0, 0, 0, 0, 0, 0] + salt + [UInt8](repeating: 0, count: 8)
    header += check.withUnsafeBytes { Array($0) } + e.header
    let c = try! e.push(stream, tag: .final, associatedData: header)
    let n = UInt32(c.count)
    return header + [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + c
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    restore(bytes)
    if bytes.count <= 65_536 { restore(authentic(bytes)) }
    if bytes.count <= 65_536 - profile.count { restore(authentic(profile + bytes)) }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzBackup_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
