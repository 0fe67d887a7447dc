// What a handshake or a transport shows when printed, dumped or logged: its public state only.
// The stored keys are SecureBytes and PrivateKey values, which redact themselves too; these
// conformances keep the summary short.

extension NoiseHandshake: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The protocol, the role and the progress; never key material.
    public var description: String {
        "NoiseHandshake(\(protocolName), \(role), message \(messageIndex) of \(pattern.messages.count))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension NoiseTransport: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The message counts; never key material.
    public var description: String { "NoiseTransport(sent: \(sendingNonce), received: \(receivingNonce))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
