import Foundation
import Hush
import HushCrypto
import HushTransport
import Synchronization

/// Linking a new device to an existing account (Docs/client.md §Linked devices,
/// Docs/spec/client.md §7): the **new** device's side.
///
/// ```swift
/// let pending = try await HushLink.begin(configuration: config)
/// print(pending.code)                                  // the user gives it to an existing device
/// let message = try await pending.wait()               // that device ran linkDevice(code:)
/// let store = InMemoryClientStore(identity: message.identity, registrationID: try RegistrationID.generate())
/// let client = try HushClient.create(linking: message, store: store, configuration: config)
/// await client.start()                                 // registers as message.deviceID
/// ```
public enum HushLink {
    /// Opens an anonymous connection to the relay, asks it for a provisioning address
    /// (`OpenProvisioning`, spec relay §22.3) and makes a fresh provisioning key pair: the
    /// returned link's ``PendingLink/code`` carries both. `relayKey`: the relay's static key if
    /// known (else it is learned from an XX handshake's certificate, validated against
    /// `configuration.trustRoot`, which is then abandoned before any `ClientHello` is sent).
    public static func begin(configuration: ClientConfiguration,
                             relayKey: Curve25519.KeyAgreement.PublicKey? = nil) async throws(ClientError) -> PendingLink {
        let key: Curve25519.KeyAgreement.PrivateKey
        do { key = try Curve25519.KeyAgreement.PrivateKey(using: configuration.random) } catch { throw .crypto("\(error)") }
        let relay: Curve25519.KeyAgreement.PublicKey
        if let relayKey { relay = relayKey } else { relay = try await probeRelayKey(configuration) }
        let clock = configuration.clock
        let link: RelayLink
        do {
            link = try await RelayLink.open(endpoint: configuration.endpoint, pattern: .nk, deviceKey: nil, relayKey: relay,
                                            trustRoot: configuration.trustRoot, hello: RelayClientHello(),
                                            nowSeconds: { clock() / 1_000 }, random: configuration.random,
                                            timeout: configuration.requestTimeout)
        } catch .rejected(let code) {
            throw .relay(code)
        } catch {
            throw .offline
        }
        let pending = PendingLink(link: link, key: key, configuration: configuration)
        try await pending.open()
        return pending
    }

    /// The relay's static key from message 2 of an XX handshake (its certificate validated against
    /// the trust root by ``ClientHandshake``); message 3 is never sent, the socket is dropped.
    static func probeRelayKey(_ configuration: ClientConfiguration) async throws(ClientError) -> Curve25519.KeyAgreement.PublicKey {
        let endpoint = configuration.endpoint, timeout = configuration.requestTimeout
        let socket: WebSocketConnection
        do {
            socket = try await WebSocketConnection.connect(host: endpoint.host, port: endpoint.port, path: endpoint.path,
                                                           timeout: .seconds(max(1, timeout.components.seconds)), bufferLimit: 16)
        } catch { throw .offline }
        defer { socket.abort() }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            socket.abort()
        }
        defer { watchdog.cancel() }
        let clock = configuration.clock
        do {
            let throwaway = try Curve25519.KeyAgreement.PrivateKey(using: configuration.random)
            var hs = try ClientHandshake(pattern: .xx, deviceKey: throwaway, relayKey: nil, trustRoot: configuration.trustRoot,
                                         hello: RelayClientHello(), now: { clock() / 1_000 }, random: configuration.random)
            socket.send(try hs.start())
            var events = socket.events.makeAsyncIterator()
            guard case .binary(let reply)? = await events.next() else { throw ClientError.offline }
            _ = try hs.receive(reply)
            guard let certificate = hs.certificate else { throw ClientError.crypto("the relay sent no certificate") }
            return certificate.relayKey
        } catch let e as ClientError {
            throw e
        } catch {
            throw .crypto("relay handshake: \(error)")
        }
    }
}

/// A new device waiting to be linked: its code, its anonymous provisioning connection and its
/// provisioning key pair (wiped when this is released). One message, then the connection closes.
public actor PendingLink {
    /// Close code: the provisioning address expired (spec relay §9.2).
    static let expiredCloseCode: UInt16 = RelayProtocol.CloseCode.provisioningExpired.rawValue

    /// What the user gives to an existing device (`hush-link:…`, Docs/spec/client.md §7.1).
    public nonisolated var code: String { linkCode.string }
    /// The code's parts.
    public nonisolated var linkCode: LinkCode { codeBox.withLock { $0! } }
    /// When the relay closes the address (Unix ms, the relay's clock).
    public nonisolated var expiresAt: UInt64 { expiry.withLock { $0 } }

    private let link: RelayLink
    private let key: Curve25519.KeyAgreement.PrivateKey
    private let configuration: ClientConfiguration
    private nonisolated let codeBox = MutexBox<LinkCode?>(nil)
    private nonisolated let expiry = MutexBox<UInt64>(0)
    private var addressWaiter: CheckedContinuation<Result<RelayProvisioningAddress, ClientError>, Never>?
    private var outcome: Result<ProvisioningMessage, ClientError>?
    private var waiters: [Int: CheckedContinuation<Result<ProvisioningMessage, ClientError>, Never>] = [:]
    private var nextWaiter = 0
    private var reader: Task<Void, Never>?

    init(link: RelayLink, key: Curve25519.KeyAgreement.PrivateKey, configuration: ClientConfiguration) {
        self.link = link
        self.key = key
        self.configuration = configuration
    }

    /// Sends `OpenProvisioning` and waits for the address.
    func open() async throws(ClientError) {
        reader = Task { await self.read() }
        var s = RelayStanza()
        s.openProvisioning.requestID = 1
        let timeout = configuration.requestTimeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.finishAddress(.failure(.timeout))
        }
        defer { timer.cancel() }
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<RelayProvisioningAddress, ClientError>, Never>) in
            addressWaiter = c
            if !link.send(s) { finishAddress(.failure(.offline)) }
        }
        switch result {
        case .success(let a):
            do { let code = try LinkCode(address: Array(a.address), publicKey: key.publicKey); codeBox.withLock { $0 = code } } catch {
                link.abort()
                throw .invalidLinkCode(error)
            }
            expiry.withLock { $0 = a.expiresAt }
        case .failure(let e):
            link.abort()
            throw e
        }
    }

    private func finishAddress(_ r: Result<RelayProvisioningAddress, ClientError>) {
        addressWaiter?.resume(returning: r)
        addressWaiter = nil
    }

    private func read() async {
        var closeCode: UInt16?
        for await event in link.events {
            switch event {
            case .binary(let bytes):
                guard let stanza = try? link.open(bytes) else {
                    finish(.failure(.crypto("the provisioning connection failed to decrypt")))
                    link.abort()
                    return
                }
                switch stanza.body {
                case .provisioningAddress(let a)?: finishAddress(.success(a))
                case .error(let e)? where e.requestID == 1: finishAddress(.failure(.relay(e.code)))
                case .provisioningMessage(let m)?:
                    // One message per address: whatever it holds, this link is done.
                    do throws(ProvisioningError) {
                        finish(.success(try ProvisioningMessage.open(m.body, keyPair: key)))
                    } catch {
                        finish(.failure(.provisioning(error)))
                    }
                    await link.close()
                    return
                default: break
                }
            case .closed(let code):
                closeCode = code
            }
        }
        finishAddress(.failure(.offline))
        finish(.failure(closeCode == Self.expiredCloseCode ? .linkExpired : .offline))
    }

    private func finish(_ r: Result<ProvisioningMessage, ClientError>) {
        guard outcome == nil else { return }
        outcome = r
        let all = waiters
        waiters = [:]
        for (_, c) in all { c.resume(returning: r) }
    }

    /// Waits until an existing device's provisioning message arrives and returns it, opened and
    /// decoded: ``ClientError/linkExpired`` when the relay closed the address (4009, ten minutes
    /// after ``HushLink/begin(configuration:relayKey:)``), ``ClientError/provisioning(_:)`` for a
    /// message that does not open or decode, ``ClientError/offline`` if the connection ended,
    /// ``ClientError/timeout`` after `timeout` (the link stays open; wait again).
    public func wait(timeout: Duration? = nil) async throws(ClientError) -> ProvisioningMessage {
        if let outcome { return try outcome.get() }
        nextWaiter += 1
        let id = nextWaiter
        var timer: Task<Void, Never>?
        if let timeout {
            let sleep = configuration.sleep
            timer = Task {
                do { try await sleep(timeout) } catch { return }
                self.expire(id)
            }
        }
        defer { timer?.cancel() }
        let r = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Result<ProvisioningMessage, ClientError>, Never>) in
                if let outcome { c.resume(returning: outcome) } else { waiters[id] = c }
            }
        } onCancel: {
            Task { await self.expire(id) }
        }
        return try r.get()
    }

    /// ``wait(timeout:)``, then the new device itself: `makeStore` makes its store with the
    /// account's identity key pair and a fresh registration id (given), and the client is
    /// ``HushClient/create(linking:store:configuration:)`` on it with this link's configuration,
    /// not yet started (``HushClient/start()`` registers it as the message's device id). A store
    /// that cannot be made is ``ClientError/store(_:)``.
    public func client(timeout: Duration? = nil,
                       makeStore: (IdentityKeyPair, UInt32) throws -> any ClientStore) async throws(ClientError) -> HushClient {
        let message = try await wait(timeout: timeout)
        let registrationID: UInt32
        do { registrationID = try RegistrationID.generate(using: configuration.random) } catch { throw .crypto("\(error)") }
        let store: any ClientStore
        do { store = try makeStore(message.identity, registrationID) } catch { throw .store("\(error)") }
        return try HushClient.create(linking: message, store: store, configuration: configuration)
    }

    private func expire(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume(returning: .failure(.timeout))
    }

    /// Closes the provisioning connection (the address is closed with it).
    public func cancel() async {
        finish(.failure(.offline))
        await link.close()
        reader?.cancel()
    }
}

/// A value behind a lock, readable from nonisolated members.
final class MutexBox<T: Sendable>: Sendable {
    private let m: Synchronization.Mutex<T>
    init(_ v: T) { m = Synchronization.Mutex(v) }
    func withLock<R>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}
