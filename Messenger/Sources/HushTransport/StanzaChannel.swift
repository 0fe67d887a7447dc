import Hush
import HushNoise

/// One direction-pair of an established relay channel: stanzas in, stanzas out, each one
/// Noise transport message (`Docs/spec/relay.md` §6.1).
///
/// The sending and receiving halves are independent values (copies of the Noise transport
/// of which each uses only one cipher state), so one task may send while another receives.
public struct StanzaChannel: Sendable {
    /// The sending half.
    public struct Sender: Sendable {
        var transport: NoiseTransport
        /// Encrypts one stanza into one WebSocket binary message.
        public mutating func seal(_ stanza: RelayStanza) throws(TransportError) -> [UInt8] {
            try seal(bytes: StanzaCodec.encode(stanza))
        }
        /// Encrypts already encoded stanza bytes.
        public mutating func seal(bytes: [UInt8]) throws(TransportError) -> [UInt8] {
            do { return try transport.encrypt(bytes) } catch { throw TransportError(error) }
        }
    }

    /// The receiving half.
    public struct Receiver: Sendable {
        var transport: NoiseTransport
        /// Decrypts one WebSocket binary message; does not decode it.
        public mutating func openBytes(_ message: some ContiguousByteBuffer) throws(TransportError) -> [UInt8] {
            do { return try transport.decrypt(message) } catch { throw TransportError(error) }
        }
        /// Decrypts and decodes one stanza.
        public mutating func open(_ message: some ContiguousByteBuffer) throws(TransportError) -> RelayStanza {
            try StanzaCodec.decode(openBytes(message))
        }
    }

    /// Sends.
    public var sender: Sender
    /// Receives.
    public var receiver: Receiver
    /// The peer's Noise static key (the device on the relay side, the relay on the client side).
    public let remoteStaticKey: Curve25519.KeyAgreement.PublicKey?
    /// The handshake hash (channel binding, Noise §11.2).
    public let handshakeHash: [UInt8]

    init(_ transport: NoiseTransport) {
        sender = Sender(transport: transport)
        receiver = Receiver(transport: transport)
        remoteStaticKey = transport.remoteStaticKey
        handshakeHash = transport.handshakeHash
    }
}
