extension ConnectionRegistry {
    /// Which connections are open, which are idle and since when, and what a new connection may
    /// do once the cap is reached. A plain value, tested step by step without sockets.
    ///
    /// Up to `maxConnections` connections are served in full. At the cap, a new connection takes
    /// the place of the connection idle the longest (no request in progress: a keep-alive
    /// connection between requests, or one that has not finished sending a request head), which is
    /// closed: idle connections cost nothing to drop and are what a client holding sockets open
    /// leaves behind. Only when every connection is busy does a new one get one of the
    /// `reservedConnections`, on which only health and admin requests are answered, so an operator
    /// can still see and steer an agent that is saturated. Beyond that, new connections are refused.
    struct StateMachine<ID: Hashable> {
        enum Admission: Equatable {
            /// Served in full; `evicting` is the idle connection to close to make room.
            case normal(evicting: ID?)
            /// Beyond the cap: health and admin requests only.
            case reserved(evicting: ID?)
            /// No room even in the reserve: answer 503 and close.
            case refused
        }

        struct Limits: Sendable, Equatable {
            var maxConnections: Int
            var reservedConnections: Int
        }

        private struct Entry {
            var reserved: Bool
            /// Requests read whose response has not ended.
            var outstanding = 0
            /// When it last became idle, on `clock`.
            var idleSince: UInt64
            /// Evicted: still open until its close completes, but no longer counted.
            var closing = false
        }

        let limits: Limits
        private var entries: [ID: Entry] = [:]
        /// A logical clock: only the order of idle times matters, so no wall time is read.
        private var clock: UInt64 = 0
        private(set) var normalCount = 0
        private(set) var reservedCount = 0
        private(set) var evictions = 0
        private(set) var refusals = 0

        init(limits: Limits) {
            self.limits = limits
        }

        /// A connection was accepted.
        mutating func open(_ id: ID) -> Admission {
            clock += 1
            if normalCount < limits.maxConnections {
                add(id, reserved: false)
                return .normal(evicting: nil)
            }
            if let victim = oldestIdle(reserved: false) {
                evict(victim)
                add(id, reserved: false)
                return .normal(evicting: victim)
            }
            if reservedCount < limits.reservedConnections {
                add(id, reserved: true)
                return .reserved(evicting: nil)
            }
            if let victim = oldestIdle(reserved: true) {
                evict(victim)
                add(id, reserved: true)
                return .reserved(evicting: victim)
            }
            refusals += 1
            return .refused
        }

        /// A request head was read on `id`.
        mutating func requestStarted(_ id: ID) {
            entries[id]?.outstanding += 1
        }

        /// A response ended on `id`.
        mutating func responseFinished(_ id: ID) {
            guard var e = entries[id] else { return }
            e.outstanding = max(0, e.outstanding - 1)
            if e.outstanding == 0 {
                clock += 1
                e.idleSince = clock
            }
            entries[id] = e
        }

        /// The connection closed (by either side, or evicted). Unknown ids are ignored.
        mutating func closed(_ id: ID) {
            guard let e = entries.removeValue(forKey: id) else { return }
            if !e.closing { uncount(e) }
        }

        /// Whether `id` is open and idle (for tests and logs).
        func isIdle(_ id: ID) -> Bool {
            entries[id].map { !$0.closing && $0.outstanding == 0 } ?? false
        }

        private mutating func add(_ id: ID, reserved: Bool) {
            entries[id] = Entry(reserved: reserved, idleSince: clock)
            if reserved { reservedCount += 1 } else { normalCount += 1 }
        }

        private mutating func evict(_ id: ID) {
            guard var e = entries[id] else { return }
            e.closing = true
            entries[id] = e
            uncount(e)
            evictions += 1
        }

        private mutating func uncount(_ e: Entry) {
            if e.reserved { reservedCount -= 1 } else { normalCount -= 1 }
        }

        /// The connection of the given kind idle the longest. A linear scan: the table holds a few
        /// hundred entries and is scanned only when the cap is reached.
        private func oldestIdle(reserved: Bool) -> ID? {
            var best: (id: ID, since: UInt64)?
            for (id, e) in entries where e.reserved == reserved && !e.closing && e.outstanding == 0 {
                if best == nil || e.idleSince < best!.since { best = (id, e.idleSince) }
            }
            return best?.id
        }
    }
}
