/// Recognises a QoS 1 redelivery of a request: the same reply address, correlation (or `id`) and
/// payload seen again within `window` — the broker resends what it sent just before a connection
/// dropped, a client resends what it published just before its own dropped. A different question
/// with the same correlation data is a new request, and so is the same request after the window.
///
/// Time is whatever clock the caller passes (PeerSync passes time spent connected, so a redelivery
/// that follows a long outage still falls in the window). At most `capacity` identities are kept,
/// the oldest forgotten first. A plain value, tested without I/O.
struct RedeliveryFilter: Sendable {
    /// What makes two request messages the same request.
    struct Identity: Hashable, Sendable {
        let replyTopic: String
        /// v5 Correlation Data and the v3.1.1 `id`, as bytes.
        let correlation: [UInt8]
        /// SHA-256 of the payload.
        let payloadDigest: [UInt8]
    }

    let windowNanos: UInt64
    let capacity: Int
    /// When each identity was last admitted.
    private var seen: [Identity: UInt64] = [:]
    /// Admissions, oldest first (an identity admitted again appears twice; only its newest counts).
    private var order: [(Identity, UInt64)] = []
    private var head = 0

    init(windowNanos: UInt64, capacity: Int) {
        self.windowNanos = windowNanos
        self.capacity = max(1, capacity)
    }

    var count: Int { seen.count }

    /// True for a new request (now remembered); false for a redelivery within the window.
    mutating func admit(_ identity: Identity, now: UInt64) -> Bool {
        expire(now: now)
        if seen[identity] != nil { return false }
        seen[identity] = now
        order.append((identity, now))
        while seen.count > capacity, head < order.count {
            forget(order[head])
            head += 1
        }
        compact()
        return true
    }

    /// Forgets `identity` (a request that was not taken after all).
    mutating func remove(_ identity: Identity) {
        seen[identity] = nil
    }

    private mutating func expire(now: UInt64) {
        while head < order.count, now &- order[head].1 >= windowNanos || order[head].1 > now {
            forget(order[head])
            head += 1
        }
        compact()
    }

    private mutating func forget(_ entry: (Identity, UInt64)) {
        if seen[entry.0] == entry.1 { seen[entry.0] = nil }
    }

    private mutating func compact() {
        if head > 64, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
