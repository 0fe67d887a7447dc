import Foundation
import Hush
import HushClient

// MediaDecryptor (Docs/spec/media.md §4), the decoder of every downloaded blob:
// 1. Any bytes, in any slicing, against a pointer's key, digest and size: plaintext and then a
//    clean finish, or a typed MediaError — never a crash, never more than the announced bytes.
// 2. A real blob of a file made from the input, with one byte changed (position and bit from
//    the input) or cut short: always rejected; the same blob unchanged: the file, exactly.
let key = SecureBytes(copying: [UInt8](repeating: 0x5A, count: 32))

func decrypt(_ blob: [UInt8], digest: [UInt8], size: Int, slice: Int) -> Result<[UInt8], MediaError> {
    do throws(MediaError) {
        let dec = try MediaDecryptor(key: key, digest: digest, plaintextSize: size)
        var out: [UInt8] = []
        var at = 0
        while at < blob.count {
            let end = min(blob.count, at + slice)
            out += try dec.push(Array(blob[at..<end]))
            at = end
        }
        try dec.finish()
        precondition(out.count == size, "a finished decryption gives exactly the announced bytes")
        return .success(out)
    } catch { return .failure(error) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 4 else { return 0 }
    let slice = 1 + Int(bytes[0]) * 300 + Int(bytes[1])
    let announced = Int(bytes[2]) * 700
    // 1. Arbitrary bytes.
    let digest = SHA256.hash(Array(bytes[3...]))
    if case .success(let plain) = decrypt(Array(bytes[3...]), digest: digest, size: announced, slice: slice) {
        precondition(plain.count == announced)
    }
    // 2. A real blob of a file from the input (the input repeated to one of four sizes up to
    //    ~135 KB, so blobs of up to three 64 KiB chunks are reached), then tampered with.
    let pattern = Array(bytes[3...])
    let fileSize = Int(bytes[2] & 3) * 45_000 + pattern.count
    var file: [UInt8] = []
    file.reserveCapacity(fileSize + pattern.count)
    while file.count < fileSize { file += pattern }
    file.removeLast(file.count - fileSize)
    guard let enc = try? MediaEncryptor(plaintextSize: file.count) else { return 0 }
    var blob = (try? enc.push(file)) ?? []
    guard let (tail, realDigest) = try? enc.finish() else { return 0 }
    blob += tail
    let k = enc.key
    func open(_ b: [UInt8]) -> Result<[UInt8], MediaError> {
        do throws(MediaError) {
            let dec = try MediaDecryptor(key: k, digest: realDigest, plaintextSize: file.count)
            var out: [UInt8] = []
            var at = 0
            while at < b.count {
                let end = min(b.count, at + slice)
                out += try dec.push(Array(b[at..<end]))
                at = end
            }
            try dec.finish()
            return .success(out)
        } catch { return .failure(error) }
    }
    guard case .success(let back) = open(blob), back == file else { preconditionFailure("an untouched blob opens to its file") }
    var flipped = blob
    let position = (Int(bytes[0]) << 16 | Int(bytes[1]) << 8 | Int(bytes[3])) % blob.count
    flipped[position] ^= 1 << (bytes[3] & 7)
    if case .success = open(flipped) { preconditionFailure("a changed byte is rejected") }
    let cut = Array(blob.prefix(position))
    if case .success = open(cut) { preconditionFailure("a truncated blob is rejected") }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzMediaBlob_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzz)
}
