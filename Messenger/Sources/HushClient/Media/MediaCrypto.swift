import Foundation
import Hush

/// The encryption of one media file (Docs/spec/media.md §2): libsodium secretstream
/// (XChaCha20-Poly1305) under a fresh random 32-byte key, the plaintext zero-padded to
/// ``MediaFormat/paddedSize(_:)`` and cut into chunks of ``MediaFormat/chunkSize`` bytes, the
/// last one tagged final. The blob is `header (24) || chunk₀ || … || chunkₙ₋₁`; its SHA-256 is
/// the pointer's digest. Its length follows from the plaintext size alone
/// (``MediaFormat/ciphertextSize(plaintextSize:)``), so a recipient knows the exact length to
/// expect before downloading.
public enum MediaFormat {
    /// Plaintext bytes per chunk (the last chunk may be shorter).
    public static let chunkSize = 65_536
    /// The smallest padded size.
    public static let minimumPaddedSize = 541
    /// The largest blob the relay stores (100 MiB).
    public static let maxCiphertextSize = 100 * 1_048_576
    /// The largest plaintext whose blob fits in ``maxCiphertextSize``.
    public static let maxPlaintextSize: Int = {
        var low = 0, high = maxCiphertextSize
        while low < high {
            let mid = (low + high + 1) / 2
            if ciphertextSize(plaintextSize: mid) <= maxCiphertextSize { low = mid } else { high = mid - 1 }
        }
        return low
    }()

    /// The padded plaintext size: `max(541, size, floor(1.05^ceil(log(size) / log(1.05))))` in
    /// IEEE-754 double arithmetic with natural logarithms (541 for size 0). Signal's padding
    /// curve; padded sizes grow by at most 5 %, so a blob's length tells little about the file.
    public static func paddedSize(_ size: Int) -> Int {
        precondition(size >= 0, "negative size")
        guard size > minimumPaddedSize else { return minimumPaddedSize }
        let exponent = (log(Double(size)) / log(1.05)).rounded(.up)
        let curve = pow(1.05, exponent).rounded(.down)
        return Swift.max(size, Int(curve))
    }

    /// Chunks in the blob of a `plaintextSize`-byte file.
    public static func chunkCount(plaintextSize: Int) -> Int {
        (paddedSize(plaintextSize) + chunkSize - 1) / chunkSize
    }

    /// The exact blob length for a `plaintextSize`-byte file.
    public static func ciphertextSize(plaintextSize: Int) -> Int {
        SecretStream.headerByteCount + paddedSize(plaintextSize) + chunkCount(plaintextSize: plaintextSize) * SecretStream.chunkOverhead
    }
}

/// Why a media blob was rejected or could not be made. Carries sizes and chunk numbers, never
/// key material.
public enum MediaError: Error, Equatable, Sendable {
    /// The file is larger than ``MediaFormat/maxPlaintextSize``.
    case fileTooLarge(size: Int, limit: Int)
    /// The encryptor was given more or fewer plaintext bytes than announced.
    case plaintextSizeMismatch(expected: Int, actual: Int)
    /// The blob ended before its expected length (``MediaFormat/ciphertextSize(plaintextSize:)``).
    case truncated(expected: Int, actual: Int)
    /// The blob is longer than its expected length.
    case oversized(expected: Int)
    /// The blob's SHA-256 is not the pointer's digest, and its first chunk does not open under
    /// the key: another blob than the one the sender uploaded (substituted), or one whose first
    /// chunk or header was altered.
    case digestMismatch
    /// The blob's first chunk opens under the key but chunk `chunk` does not: the sender's blob
    /// with bytes altered (the digest does not match either).
    case tampered(chunk: Int)
    /// The blob is exactly the one the sender uploaded (digest matches) but the key does not
    /// open it: the pointer's key is wrong.
    case wrongKey
    /// The digest matches and the key opens the stream, but its structure is wrong (a chunk tag
    /// other than the one expected at that position, or padding bytes that are not zero): the
    /// sender produced a malformed blob.
    case malformedBlob(chunk: Int)
    /// The key has the wrong length.
    case invalidKey
}

/// Encrypts one file as a stream: ``header`` first, then ``push(_:)`` with the plaintext in
/// any slicing, then ``finish()``. Memory stays at one chunk. Not Sendable: use from one task.
public final class MediaEncryptor {
    /// The fresh file key (32 bytes, wiped when released).
    public let key: SecureBytes
    /// The plaintext size announced up front (it fixes the padding and the blob length).
    public let plaintextSize: Int
    private let stream: SecretStream.Encryptor
    private let hasher: SHA256.Hasher
    private let paddedSize: Int
    private var buffer: [UInt8] = []
    private var consumed = 0
    private var emittedHeader = false
    private var chunksDone = 0

    /// A new encryption under a fresh key drawn from `random`.
    public init(plaintextSize: Int, random: some RandomSource = SystemRandom()) throws(MediaError) {
        guard plaintextSize >= 0, plaintextSize <= MediaFormat.maxPlaintextSize else {
            throw .fileTooLarge(size: plaintextSize, limit: MediaFormat.maxPlaintextSize)
        }
        do {
            key = try SecureBytes(randomCount: SecretStream.keyByteCount, using: random)
            stream = try SecretStream.Encryptor(key: key)
            hasher = try SHA256.Hasher()
        } catch { throw .invalidKey }
        self.plaintextSize = plaintextSize
        paddedSize = MediaFormat.paddedSize(plaintextSize)
        buffer.reserveCapacity(MediaFormat.chunkSize)
    }

    /// Ciphertext for the next plaintext bytes (possibly empty: chunks are emitted whole).
    public func push(_ plaintext: some ContiguousByteBuffer) throws(MediaError) -> [UInt8] {
        let count = plaintext.byteCount
        guard consumed + count <= plaintextSize else {
            throw .plaintextSizeMismatch(expected: plaintextSize, actual: consumed + count)
        }
        consumed += count
        var out = takeHeader()
        plaintext.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                // A whole chunk in the input, and not the last one: sealed in place, not copied.
                if buffer.isEmpty, raw.count - offset >= MediaFormat.chunkSize,
                   (chunksDone + 1) * MediaFormat.chunkSize < paddedSize {
                    let sealed = seal(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + MediaFormat.chunkSize)]), final: false)
                    if out.isEmpty { out = sealed } else { out += sealed }
                    offset += MediaFormat.chunkSize
                    continue
                }
                let take = Swift.min(MediaFormat.chunkSize - buffer.count, raw.count - offset)
                buffer.append(contentsOf: raw[offset..<(offset + take)])
                offset += take
                if buffer.count == MediaFormat.chunkSize, chunksDone * MediaFormat.chunkSize + buffer.count < paddedSize {
                    out += sealBuffer(final: false)
                }
            }
        }
        return out
    }

    /// The rest of the blob (the padding and the final chunk) and the blob's SHA-256.
    public func finish() throws(MediaError) -> (ciphertext: [UInt8], digest: [UInt8]) {
        guard consumed == plaintextSize else { throw .plaintextSizeMismatch(expected: plaintextSize, actual: consumed) }
        var out = takeHeader()
        var written = chunksDone * MediaFormat.chunkSize + buffer.count
        while written < paddedSize {
            let take = Swift.min(MediaFormat.chunkSize - buffer.count, paddedSize - written)
            buffer.append(contentsOf: repeatElement(0, count: take))
            written += take
            if written < paddedSize { out += sealBuffer(final: false) }
        }
        out += sealBuffer(final: true)
        return (out, hasher.finalize())
    }

    private func takeHeader() -> [UInt8] {
        guard !emittedHeader else { return [] }
        emittedHeader = true
        hasher.update(stream.header)
        return stream.header
    }

    private func sealBuffer(final: Bool) -> [UInt8] {
        let sealed = buffer.withUnsafeBytes { seal($0, final: final) }
        sodiumWipe(&buffer)
        buffer.removeAll(keepingCapacity: true)
        return sealed
    }

    private func seal(_ chunk: UnsafeRawBufferPointer, final: Bool) -> [UInt8] {
        // push cannot fail here: the stream is never finished before the final chunk.
        let sealed = try! stream.push(chunk, tag: final ? .final : .message)
        chunksDone += 1
        hasher.update(sealed)
        return sealed
    }
}

/// Checks and decrypts one blob as a stream against its pointer: ``push(_:)`` with the blob in
/// any slicing returns plaintext as chunks authenticate, ``finish()`` checks length and digest.
/// The plaintext is the file's only once ``finish()`` returned: write it to a temporary file
/// and move it into place then, never show it before. Not Sendable: use from one task.
///
/// Classification (Docs/spec/media.md §4): after the first chunk that fails to open, the rest
/// is only hashed, and ``finish()`` decides: wrong length → ``MediaError/truncated(expected:actual:)``
/// / ``MediaError/oversized(expected:)`` (the latter at once); digest matches → ``MediaError/wrongKey``
/// (chunk 0 failed) or ``MediaError/malformedBlob(chunk:)``; digest differs → ``MediaError/tampered(chunk:)``
/// if chunk 0 opened, else ``MediaError/digestMismatch``.
public final class MediaDecryptor {
    private let key: SecureBytes
    private let digest: [UInt8]
    private let plaintextSize: Int
    private let paddedSize: Int
    private let chunkCount: Int
    /// The blob's expected length.
    public let expectedSize: Int
    private let hasher: SHA256.Hasher
    private var stream: SecretStream.Decryptor?
    private var pending: [UInt8] = []
    private var received = 0
    private var chunkIndex = 0
    private var plaintextOut = 0
    private var failedChunk: Int?
    private var structuralFailure: Int?

    /// A decryption of the blob `pointer` names.
    public convenience init(pointer: MediaPointer) throws(MediaError) {
        try self.init(key: pointer.key, digest: pointer.digest, plaintextSize: pointer.plaintextSize)
    }

    /// A decryption under `key` of a blob with SHA-256 `digest` holding `plaintextSize` bytes.
    public init(key: SecureBytes, digest: [UInt8], plaintextSize: Int) throws(MediaError) {
        guard key.count == SecretStream.keyByteCount else { throw .invalidKey }
        guard plaintextSize >= 0, plaintextSize <= MediaFormat.maxPlaintextSize else {
            throw .fileTooLarge(size: plaintextSize, limit: MediaFormat.maxPlaintextSize)
        }
        self.key = key
        self.digest = digest
        self.plaintextSize = plaintextSize
        paddedSize = MediaFormat.paddedSize(plaintextSize)
        chunkCount = MediaFormat.chunkCount(plaintextSize: plaintextSize)
        expectedSize = MediaFormat.ciphertextSize(plaintextSize: plaintextSize)
        do { hasher = try SHA256.Hasher() } catch { throw .invalidKey }
    }

    /// Blob bytes received so far.
    public var receivedSize: Int { received }

    /// Plaintext for the next blob bytes (empty until a whole chunk arrived, and after a failure).
    public func push(_ bytes: some ContiguousByteBuffer) throws(MediaError) -> [UInt8] {
        let count = bytes.byteCount
        guard received + count <= expectedSize else { throw .oversized(expected: expectedSize) }
        received += count
        hasher.update(bytes)
        guard failedChunk == nil, structuralFailure == nil else { return [] }
        var out: [UInt8] = []
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count, failedChunk == nil, structuralFailure == nil {
                let unit = nextUnitSize
                // A whole unit in the input: opened in place, not copied.
                if pending.isEmpty, raw.count - offset >= unit {
                    let plain = open(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + unit)]))
                    if out.isEmpty { out = plain } else { out += plain }
                    offset += unit
                    continue
                }
                let take = Swift.min(unit - pending.count, raw.count - offset)
                pending.append(contentsOf: raw[offset..<(offset + take)])
                offset += take
                if pending.count == unit {
                    let plain = pending.withUnsafeBytes { open($0) }
                    pending.removeAll(keepingCapacity: true)
                    if out.isEmpty { out = plain } else { out += plain }
                }
            }
        }
        return out
    }

    /// Checks the blob's length and digest. Throws the classification above; returns normally
    /// only if every chunk opened, the padding is zero and the digest matches.
    public func finish() throws(MediaError) {
        guard received == expectedSize else { throw .truncated(expected: expectedSize, actual: received) }
        let matches = ConstantTime.equals(hasher.finalize(), digest)
        if let failed = failedChunk {
            if matches { throw failed == 0 ? .wrongKey : .malformedBlob(chunk: failed) }
            throw failed == 0 ? .digestMismatch : .tampered(chunk: failed)
        }
        if let bad = structuralFailure {
            throw matches ? .malformedBlob(chunk: bad) : .tampered(chunk: bad)
        }
        guard matches else { throw .digestMismatch }
    }

    /// The header, then each chunk: its plaintext length plus the AEAD overhead.
    private var nextUnitSize: Int {
        guard stream != nil else { return SecretStream.headerByteCount }
        let plain = chunkIndex < chunkCount - 1 ? MediaFormat.chunkSize : paddedSize - (chunkCount - 1) * MediaFormat.chunkSize
        return plain + SecretStream.chunkOverhead
    }

    private func open(_ unit: UnsafeRawBufferPointer) -> [UInt8] {
        guard let stream else {
            // The header; init_pull never rejects 24 bytes, so this cannot fail for lengths we pass.
            do { self.stream = try SecretStream.Decryptor(key: key, header: unit) } catch { failedChunk = 0 }
            return []
        }
        // Taken apart on assignment, so `plain` is the only reference to the plaintext and the
        // wipe below clears it (not a copy made because a tuple still held it).
        var plain: [UInt8] = []
        var tag = SecretStream.Tag.message
        do { (plain, tag) = try stream.pull(unit) } catch {
            failedChunk = chunkIndex
            return []
        }
        defer { sodiumWipe(&plain) }
        let isLast = chunkIndex == chunkCount - 1
        guard tag == (isLast ? .final : .message) else {
            structuralFailure = chunkIndex
            return []
        }
        chunkIndex += 1
        // The file's bytes, then zero padding (checked).
        let fileBytes = Swift.min(plain.count, plaintextSize - plaintextOut)
        let padding = plain[fileBytes...]
        guard padding.allSatisfy({ $0 == 0 }) else {
            structuralFailure = chunkIndex - 1
            return []
        }
        plaintextOut += fileBytes
        if fileBytes == plain.count {
            // Handed over whole; the caller wipes it (nothing is left here to wipe).
            defer { plain = [] }
            return plain
        }
        return Array(plain[..<fileBytes])
    }
}

/// Overwrites a transient plaintext buffer before it is released (as ``ColumnSeal``'s wipe).
func sodiumWipe(_ bytes: inout [UInt8]) { ColumnSeal.wipe(&bytes) }
