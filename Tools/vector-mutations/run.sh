#!/usr/bin/env bash
# Mutation check of the hush-1 vectors: for each rule, make Hush break it (one small source
# change, e.g. a limit ±1), rebuild hush-conformance, replay TestVectors/hush-1, report how
# many cases fail, and restore the file. A rule is pinned when its mutation fails a case.
# Run from the package root on a clean work tree (it edits Sources/ and restores them):
#   Tools/vector-mutations/run.sh
# Not part of CI (about 30 debug rebuilds). Results are in Tools/vector-mutations/README.md.
set -u
cd "$(dirname "$0")/../.."
BACKUP=$(mktemp) LOG=$(mktemp)
trap 'rm -f "$BACKUP" "$LOG"' EXIT
run() { # name file python-replacement(old) (new)
  local name="$1" file="$2" old="$3" new="$4"
  cp "$file" "$BACKUP"
  python3 - "$file" "$old" "$new" <<'PY'
import sys
p,old,new=sys.argv[1:4]
s=open(p).read()
assert s.count(old)>=1, "pattern not found: "+old
open(p,'w').write(s.replace(old,new))
PY
  if [ $? -ne 0 ]; then echo "MUTATION $name: PATTERN NOT FOUND"; cp "$BACKUP" "$file"; return; fi
  if swift build --product hush-conformance >"$LOG" 2>&1; then
    out=$(.build/debug/hush-conformance TestVectors/hush-1 2>&1 | tail -1)
    echo "MUTATION $name: ${out:-the replay crashed}"
  else
    echo "MUTATION $name: BUILD FAILED"; tail -5 "$LOG"
  fi
  cp "$BACKUP" "$file"
}
C=Sources/Hush/Protocol/SignalConstants.swift
run "MAX_SKIP 2000->1999" $C "maximumSkippedMessages: UInt32 = 2000" "maximumSkippedMessages: UInt32 = 1999"
run "MAX_SKIP 2000->2001" $C "maximumSkippedMessages: UInt32 = 2000" "maximumSkippedMessages: UInt32 = 2001"
run "skipped keys kept 2000->1999" $C "maximumStoredMessageKeys = 2000" "maximumStoredMessageKeys = 1999"
run "skipped keys kept 2000->2001" $C "maximumStoredMessageKeys = 2000" "maximumStoredMessageKeys = 2001"
run "receiving chains 5->4" $C "maximumReceiverChains = 5" "maximumReceiverChains = 4"
run "receiving chains 5->6" $C "maximumReceiverChains = 5" "maximumReceiverChains = 6"
run "archived states 40->39" $C "maximumArchivedStates = 40" "maximumArchivedStates = 39"
run "archived states 40->41" $C "maximumArchivedStates = 40" "maximumArchivedStates = 41"
R=Sources/Hush/Session/SessionRecord.swift
run "duplicate does not stop the search" $R "if case .duplicateMessage = error { throw error }" ""
run "final error: the current state's, no too_far priority" $R "if let far = failures.first(where: { if case .tooFarInFuture = \$0 { return true }; return false }) { return far }" ""
run "final error: the last state's" $R "return failures.first ?? .badMAC" "return failures.last ?? .badMAC"
run "archive: new entries at the back" $R "archived.insert(current, at: 0)" "archived.append(current)"
run "promotion swaps the states" $R "                archived.remove(at: index)
                promote(attempt)" "                archived[index] = current
                current = attempt"
run "evict the newest archived state" $R "archived.removeLast(archived.count - SignalConstants.maximumArchivedStates)" "archived.removeFirst(archived.count - SignalConstants.maximumArchivedStates)"
H=Sources/Hush/Wire/HushMessage.swift
run "extra flag bits accepted" $H "guard flags & ~1 == 0 else { throw .malformed(.invalidEncoding) }" ""
L=Sources/Hush/Wire/LEB128.swift
run "non-canonical varints accepted" $L "guard i == 0 || b != 0, result <= UInt64(UInt32.max) else { return .invalid }" "guard result <= UInt64(UInt32.max) else { return .invalid }"
run "varints >= 2^32 accepted (truncated)" $L "guard i == 0 || b != 0, result <= UInt64(UInt32.max) else { return .invalid }" "guard i == 0 || b != 0 else { return .invalid }"
S=Sources/Hush/Envelope/SealedEnvelope.swift
run "padding not checked" $S "guard content.count == Padme.paddedLength(r.offset), content[r.offset...].allSatisfy({ \$0 == 0 }) else {" "guard true else {"
run "padding bytes not checked" $S "content[r.offset...].allSatisfy({ \$0 == 0 })" "true"
run "padding length not checked" $S "content.count == Padme.paddedLength(r.offset)," ""
run "content type 0 accepted as other" $S "guard let type = EnvelopeContentType(rawValue: try r.byte()) else { throw .malformed(\"content type 0\") }" "let type = EnvelopeContentType(rawValue: try r.byte()) ?? .other(0)"
run "identity check before the certificate" $S "        do { try validator.validate(certificate, now: now) } catch { throw .certificate(error) }
        guard certificate.identityKey == sender else { throw .certificate(.identityMismatch) }" "        guard certificate.identityKey == sender else { throw .certificate(.identityMismatch) }
        do { try validator.validate(certificate, now: now) } catch { throw .certificate(error) }"
X=Sources/Hush/Envelope/SenderCertificate.swift
run "certificates verified libsignal-compatibly" $X "publicKey: server.key, policy: .specificationOnly" "publicKey: server.key, policy: .libsignalCompatible"
run "server expiry not checked" $X "guard now < server.expiration else" "guard true else"
run "server expiry after the sender signature" $X "        guard now < server.expiration else { throw .serverCertificateExpired(expiration: server.expiration, now: now) }
        guard XEdDSA.isValidSignature(certificate.signature, for: certificate.signedContent, publicKey: server.key, policy: .specificationOnly) else {
            throw .badSenderSignature
        }" "        guard XEdDSA.isValidSignature(certificate.signature, for: certificate.signedContent, publicKey: server.key, policy: .specificationOnly) else {
            throw .badSenderSignature
        }
        guard now < server.expiration else { throw .serverCertificateExpired(expiration: server.expiration, now: now) }"
run "revocation after the server signature" $X "        guard !revokedServerKeyIDs.contains(server.keyID) else { throw .revokedServerKey(keyID: server.keyID) }
        guard XEdDSA.isValidSignature(server.signature, for: server.signedContent, publicKey: trustRoot, policy: .specificationOnly) else {
            throw .badServerSignature
        }" "        guard XEdDSA.isValidSignature(server.signature, for: server.signedContent, publicKey: trustRoot, policy: .specificationOnly) else {
            throw .badServerSignature
        }
        guard !revokedServerKeyIDs.contains(server.keyID) else { throw .revokedServerKey(keyID: server.keyID) }"
run "expiry before the sender signature" $X "        guard XEdDSA.isValidSignature(certificate.signature, for: certificate.signedContent, publicKey: server.key, policy: .specificationOnly) else {
            throw .badSenderSignature
        }
        guard now < certificate.expiration" "        guard now < certificate.expiration else { throw .expired(expiration: certificate.expiration, now: now) }
        guard XEdDSA.isValidSignature(certificate.signature, for: certificate.signedContent, publicKey: server.key, policy: .specificationOnly) else {
            throw .badSenderSignature
        }
        guard now < certificate.expiration"
run "expiry at now accepted (<=)" $X "guard now < certificate.expiration" "guard now <= certificate.expiration"
run "trailing certificate bytes accepted" $X "        self = try Self.read(&r)
        guard r.isAtEnd else { throw .malformed(\"trailing bytes\") }
    }

    static func read(_ r: inout EnvelopeReader) throws(CertificateError) -> SenderCertificate {" "        self = try Self.read(&r)
    }

    static func read(_ r: inout EnvelopeReader) throws(CertificateError) -> SenderCertificate {"
run "sender id UTF-8 not checked" $X "guard let id = String(validating: try r.bytes(idCount), as: UTF8.self) else" "guard let id = Optional(String(decoding: try r.bytes(idCount), as: UTF8.self)) else"
run "sender id of 256 bytes accepted" $X "guard (1...EnvelopeConstants.maximumSenderIDByteCount).contains(idCount)" "guard (1...256).contains(idCount)"
run "empty sender id accepted" $X "guard (1...EnvelopeConstants.maximumSenderIDByteCount).contains(idCount)" "guard (0...255).contains(idCount)"
M=Sources/Hush/Envelope/MultiRecipientEnvelope.swift
run "0xE2: zero recipients accepted" $M "guard count >= 1, count <= r.remaining" "guard count <= r.remaining"
run "0xE2: trailing bytes accepted" $M "        let payload = try r.bytes(payloadCount)
        guard r.isAtEnd else { throw .malformed(\"trailing bytes\") }" "        let payload = try r.bytes(payloadCount)"
run "0xE2: payload under 16 accepted" $M "guard payloadCount >= 16 else" "guard payloadCount >= 15 else"
K=Sources/HushCrypto/Curve25519/Curve25519.swift
run "no prime-order subgroup check" $K "return crypto_core_ed25519_is_valid_point(y) == 1" "return true"
run "torsioned ratchet keys accepted" $R "guard ratchetKeyIsValid == true else { throw .invalidRatchetKey }" ""
P=Sources/Hush/Session/SessionCipher.swift
run "torsioned base keys accepted" $P "guard message.baseKey.isInPrimeOrderSubgroup else { throw .malformed(.invalidKey(field: 2)) }" ""
run "existing state: identity not compared" $P "guard existing.remoteIdentity == message.identityKey else { throw .badMAC }" ""
swift build --product hush-conformance >/dev/null 2>&1; echo DONE
