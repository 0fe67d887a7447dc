extension RelayProtocol {
    /// Limits of the relay's services beyond messaging: sender certificates (`Docs/spec/relay.md`
    /// §16), presence (§17) and ephemeral messages (§18). Clients and relay share them.
    public enum ServiceLimits {
        /// The longest a sender certificate may be valid, milliseconds (7 days).
        public static let maxSenderCertificateValidity: UInt64 = 7 * 86_400_000
        /// Sender certificate requests per device: sustained rate (per second) and burst.
        public static let senderCertificateRate: Double = 1.0 / 60
        /// Burst of sender certificate requests.
        public static let senderCertificateBurst: Double = 10
        /// Accounts in a `SetPresencePrivacy.allowed` list.
        public static let maxPresenceAllowList = 1_000
        /// Accounts in a `SubscribePresence.accounts` list.
        public static let maxPresenceSubscriptions = 256
        /// Presence requests (privacy and subscribe) per connection: sustained rate and burst.
        public static let presenceRate: Double = 1
        /// Burst of presence requests.
        public static let presenceBurst: Double = 10
        /// Bytes in a `SendEphemeral.payload`.
        public static let maxEphemeralPayload = 1_024
        /// Ephemeral sends per device: sustained rate (per second) and burst.
        public static let ephemeralRate: Double = 5
        /// Burst of ephemeral sends.
        public static let ephemeralBurst: Double = 20
    }
}
