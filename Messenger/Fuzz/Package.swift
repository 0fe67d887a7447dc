// swift-tools-version: 6.1
//
// libFuzzer targets for the relay's decoders (built only by run.sh, with -sanitize=fuzzer,address):
//   FuzzStanza           StanzaCodec.decode, RelayClientHello/ServerHello, RelayCertificate
//   FuzzRelayHandshake   the relay's side of the handshake (ServerHandshake.receive) on arbitrary
//                        first and second messages, and an established channel's receiver
//   FuzzKyberPreKeyRecord  the client store's Kyber prekey record decoder (KyberPreKeyRecordCoding)
//   FuzzClientContent    HushClient's MessageContent decoder (the plaintext between two clients)
//   FuzzClientStore      the client store's value decoders (StoredValues, SessionCiphertext)
//   FuzzMediaPointer     HushClient's MediaPointer decoder (and media MessageContent)
//   FuzzMediaBlob        HushClient's MediaDecryptor on any blob bytes, and on real blobs changed or cut short
//   FuzzBackup           HushBackup.restore: whole files, and authentic files around arbitrary record streams
//   FuzzLink             HushClient's link code and provisioning message decoders (Docs/spec/client.md §7)
import PackageDescription

let package = Package(
    name: "MessengerFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Messenger", path: "..")],
    targets: [
        .executableTarget(name: "FuzzStanza", dependencies: [.product(name: "HushTransport", package: "Messenger")]),
        .executableTarget(name: "FuzzRelayHandshake", dependencies: [.product(name: "HushTransport", package: "Messenger")]),
        .executableTarget(name: "FuzzKyberPreKeyRecord", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzClientContent", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzClientStore", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzMediaPointer", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzMediaBlob", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzBackup", dependencies: [.product(name: "HushClient", package: "Messenger")]),
        .executableTarget(name: "FuzzLink", dependencies: [.product(name: "HushClient", package: "Messenger")]),
    ]
)
