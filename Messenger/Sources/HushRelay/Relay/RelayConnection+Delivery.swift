import HushTransport
import NIOCore

/// Delivery (§7.3): committed messages and queue reads become `Deliver` stanzas, at most
/// `window` unacknowledged per connection. Everything here runs on the connection's event loop.
extension RelayConnection {
    /// Committed messages for this device, in commit order (from the store's commit callback,
    /// through ``Router/push(_:)``). Callable from any thread.
    func push(_ messages: [QueuedMessage]) {
        // Cluster touch point 2 (RelayCluster.swift): with several nodes, only a queue read keeps
        // server-id order.
        if relay.configuration.cluster.deliversByStoreRead { return wakeForStoreRead() }
        eventLoop.execute { [self] in
            guard case .device = phase else { return }
            for m in messages {
                if pushed.count >= window {
                    // Overflow: forget the buffer and read from the store instead.
                    pushed.removeAll(keepingCapacity: false)
                    needsStoreRead = true
                    generation += 1
                } else {
                    pushed.append(m)
                }
            }
            pump()
            flush()
        }
    }

    /// Tells this device that its one-time prekeys (X25519 or Kyber) run low. Callable from any thread.
    func notifyPrekeysLow(_ remaining: Int, kyberRemaining: Int) {
        eventLoop.execute { [self] in
            prekeysLow = (UInt32(clamping: remaining), UInt32(clamping: kyberRemaining))
            pump()
            flush()
        }
    }

    /// Sends what the window allows: a pending `PrekeysLow`, then queued messages (from the
    /// store until a read returns less than asked, then from the pushed buffer), then
    /// `QueueEmpty` once.
    func pump() {
        guard case .device(let address) = phase else { return }
        if let low = prekeysLow {
            prekeysLow = nil
            var s = RelayStanza()
            s.prekeysLow.remaining = low.remaining
            s.prekeysLow.kyberRemaining = low.kyber
            guard send(s) else { return }
        }
        while true {
            let room = window - inflight.count
            guard room > 0 else { return }
            if needsStoreRead {
                if !reading { readQueue(address, limit: room) }
                return
            }
            if !pushed.isEmpty {
                let m = pushed.removeFirst()
                if m.serverID > lastDelivered {
                    lastDelivered = m.serverID
                    guard deliver(m) else { return }
                }
                continue
            }
            if !drained {
                drained = true
                var s = RelayStanza()
                s.queueEmpty = RelayQueueEmpty()
                send(s)
            }
            return
        }
    }

    /// Reads the next queued messages from the store (off the loop).
    private func readQueue(_ address: DeviceAddress, limit: Int) {
        // Nothing queued (the store's in-memory count, which a write raises before it commits):
        // no read needed, as after a read that came back short. Most logins take this path.
        if relay.callbacks?.queueDepthNow(account: address.account, deviceID: address.deviceID) == 0 {
            needsStoreRead = false
            pump()
            return
        }
        reading = true
        let after = lastDelivered, gen = generation
        let store = relay.store
        let loop = eventLoop
        Task { [self] in
            let result: Result<[QueuedMessage], RelayStoreError>
            do throws(RelayStoreError) {
                result = .success(try await store.pending(account: address.account, deviceID: address.deviceID, after: after, limit: limit))
            } catch { result = .failure(error) }
            loop.execute { [self] in
                reading = false
                guard case .device = phase else { return }
                switch result {
                case .failure(let error):
                    log(.error, "queue read failed", ["error": "\(error)"])
                    close(.internalError)
                case .success(let batch):
                    for m in batch where m.serverID > lastDelivered {
                        lastDelivered = m.serverID
                        guard deliver(m) else { break }
                    }
                    if batch.count < limit, generation == gen { needsStoreRead = false }
                    let last = lastDelivered
                    pushed.removeAll { $0.serverID <= last }
                    pump()
                }
                flush()
            }
        }
    }

    private func deliver(_ m: QueuedMessage) -> Bool {
        inflight.insert(m.serverID)
        inflightAtomic.store(inflight.count, ordering: .relaxed)
        var d = RelayDeliver()
        d.serverID = m.serverID
        // A sealed send's anonymous scope (§20.3) is delivered as no sender: "" and 0.
        if !AnonymousSender.isScope(m.senderAccount) {
            d.senderAccount = m.senderAccount
            d.senderDevice = m.senderDevice
        }
        d.serverTime = m.serverTime
        d.payload = m.payload
        var s = RelayStanza()
        s.deliver = d
        guard send(s) else { return false }
        relay.metrics.delivered.increment()
        return true
    }

    /// The device acknowledged these deliveries (after the store deleted them).
    func acknowledged(_ ids: [UInt64]) {
        for id in ids { inflight.remove(id) }
        inflightAtomic.store(inflight.count, ordering: .relaxed)
        pump()
    }
}
