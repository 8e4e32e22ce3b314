import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Synchronization
import MQTT

extension PeerSync {
    /// The state shared by the network thread (invalidations, outbox acknowledgements, session
    /// loss: handled synchronously in the observer) and the request handlers (Swift tasks).
    final class Core: Sendable {
        let configuration: Configuration
        let topics: FleetTopics
        let service: any AnswerService
        let target: any InvalidationTarget
        let log: any InvalidationLog
        /// This gateway's outbox epoch (sequence numbers of its invalidations count within it).
        let epoch: String
        let counters = Mutex<[Counter: Int]>([:])
        let startedNanos = DispatchTime.now().uptimeNanoseconds
        private let connectionRef = Mutex<MQTTConnection?>(nil)
        let state: Mutex<State>
        /// Where `handle` hands request messages (attached once, by `PeerSync.init`).
        private let requestHandlerRef = Mutex<(any MQTTRequestHandler)?>(nil)
        /// Where notices go (`PeerSync.notices`).
        let notices: AsyncStream<Notice>.Continuation
        /// Largest invalidation payload read (a valid one is well under 1 KiB).
        static let maxInvalidationBytes = 64 << 10
        static let outboxBatch = 64
        /// Rate-limited notices (refused reply topics, expired requests, cache drops): at most this
        /// many of each kind per `noticeIntervalNanos`.
        static let noticeBurst = 10
        static let noticeIntervalNanos: UInt64 = 10_000_000_000

        struct State: Sendable {
            var seenInvalidations = RecentSet<String>(capacity: 8192)
            var shuttingDown = false
            var started = false
            /// Outbox records published and awaiting PUBACK: message id → sequence.
            var outboxInFlight: [Int32: Int64] = [:]
            var outboxBatchEnd: Int64?
            var sessionRecorded = false
            /// Peers' outbox positions applied, cached from the log (bounded: cleared when full).
            var positions: [String: PeerPosition] = [:]
            /// The outcome of the last fleet config, as the status topic's `config` object.
            var configStatus: JSONValue?
            var link = Link()
            var limiter = LogRateLimiter(burst: Core.noticeBurst, intervalNanos: Core.noticeIntervalNanos)
            var cacheDrops = 0
        }

        /// The broker link as the logs tell it (the reconnect itself is `MQTTConnection`'s).
        struct Link: Sendable {
            /// When the current connection's CONNACK came (uptime ns), nil while down.
            var connectedSince: UInt64?
            /// Time spent connected before the current connection.
            var connectedBefore: UInt64 = 0
            var everConnected = false
            /// When the last connection was lost, and the failed attempts since.
            var lostAt: UInt64?
            var failedAttempts = 0
            var losses = 0
            var connects = 0
            /// SUBSCRIBEs of this connection awaiting their SUBACK, and the tally so far.
            var pendingSubscriptions: Set<Int32> = []
            var granted = 0
            var refused = 0
            var reconnect = false

            /// Nanoseconds spent connected up to `now`: the clock of the redelivery window, which
            /// stands still while the broker is away (redeliveries come right after a reconnect).
            func connectedClock(now: UInt64) -> UInt64 {
                connectedBefore + (connectedSince.map { now >= $0 ? now - $0 : 0 } ?? 0)
            }
        }

        /// Where a peer's numbered invalidation or watermark stands against what was applied.
        enum Verdict: Equatable {
            /// First contact with this origin (or a new epoch of it): nothing to compare with.
            case baseline
            /// Already applied (a redelivery), or a watermark we are level with.
            case seen
            case next
            /// Something between was never received.
            case gap
        }

        init(configuration: Configuration, topics: FleetTopics, service: any AnswerService,
             target: any InvalidationTarget, log: any InvalidationLog, epoch: String,
             notices: AsyncStream<Notice>.Continuation) {
            self.epoch = epoch
            self.configuration = configuration
            self.topics = topics
            self.service = service
            self.target = target
            self.log = log
            self.notices = notices
            state = Mutex(State())
        }

        func attach(_ connection: MQTTConnection) {
            connectionRef.withLock { $0 = connection }
        }

        func attach(requests handler: any MQTTRequestHandler) {
            requestHandlerRef.withLock { $0 = handler }
        }

        var requestHandler: (any MQTTRequestHandler)? { requestHandlerRef.withLock { $0 } }

        var connection: MQTTConnection? { connectionRef.withLock { $0 } }

        func count(_ counter: Counter, _ n: Int = 1) {
            counters.withLock { $0[counter, default: 0] += n }
        }

        static func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        /// Puts a notice on `notices`; with `limit`, only if that kind is under its rate limit
        /// (`build` gets how many of the kind were held back since the last one let through).
        func notice(limit kind: String? = nil, _ build: (Int) -> Notice) {
            var held = 0
            if let kind {
                guard let h = state.withLock({ $0.limiter.admit(kind, now: Self.nowNanos()) }) else { return }
                held = h
            }
            notices.yield(build(held))
        }

        func brokerState() -> String {
            guard let c = connection else { return "disconnected" }
            return c.isConnected ? "connected" : "connecting"
        }

        // MARK: Network thread

        /// Runs on libmosquitto's network thread, before the event reaches the stream. Whatever is
        /// made durable here is durable before the PUBACK is written (packets queued in a callback
        /// go out after it returns).
        func observe(_ event: MQTTEvent) -> [MQTTEvent] {
            switch event {
            case .connected(0, let sessionPresent):
                linkUp(sessionPresent: sessionPresent)
                subscribe()
                let record = state.withLock { s -> Bool in
                    s.outboxInFlight.removeAll()
                    s.outboxBatchEnd = nil
                    defer { s.sessionRecorded = true }
                    return !s.sessionRecorded
                }
                if record {
                    do { try log.recordSession() } catch { count(.logErrors) }
                }
                pumpOutbox()
                return [event]
            case .sessionLost:
                // The broker lost our session: invalidations sent while we were away may be gone.
                // Drop everything we cannot vouch for (locally; peers are not told).
                count(.sessionLosses)
                let losses = counters.withLock { $0[.sessionLosses, default: 0] }
                notice { _ in .sessionLost(losses: losses) }
                dropUnvouched(.sessionLost)
                return [event]
            case .connected, .connectFailed:
                state.withLock { $0.link.failedAttempts += 1 }
                return [event]
            case .disconnected(let rc):
                linkDown(reasonCode: rc)
                return [event]
            case .subscribed(let mid, let granted):
                subscribed(mid, granted: granted)
                return [event]
            case .message(let m) where m.topic == topics.invalidations:
                receiveInvalidation(m)
                return []
            case .message(let m) where topics.isWatermark(m.topic):
                receiveWatermark(m)
                return []
            case .published(let mid, _):
                outboxAcknowledged(mid)
                return [event]
            default:
                return [event]
            }
        }

        private func subscribe() {
            guard let c = connection else { return }
            var mids: Set<Int32> = []
            do {
                // Requests and invalidations are events, not state: a retained one is never replayed
                // (v5; a v3.1.1 session would receive it again on each resubscription, and the
                // request and invalidation de-duplication absorbs that).
                if requestHandler != nil {
                    mids.insert(try c.client.subscribe(topics.sharedFleetRequests, qos: 1, retained: false))
                    mids.insert(try c.client.subscribe(topics.gatewayRequests, qos: 1, retained: false))
                }
                mids.insert(try c.client.subscribe(topics.invalidations, qos: 1, noLocal: true, retained: false))
                // Watermarks are retained: on every (re)subscription each peer's latest arrives.
                mids.insert(try c.client.subscribe(topics.watermarks, qos: 1, noLocal: true))
                // Configs are retained state: the latest of each arrives on every (re)subscription,
                // and the receiver treats a version it already applied as nothing new.
                if configuration.onConfig != nil {
                    mids.insert(try c.client.subscribe(topics.fleetConfig, qos: 1))
                    mids.insert(try c.client.subscribe(topics.gatewayConfig, qos: 1))
                }
            } catch {
                count(.subscribeErrors)
            }
            // Called on the network thread, which also reads the SUBACKs: none can come before this.
            state.withLock { $0.link.pendingSubscriptions = mids }
        }

        // MARK: Link events (network thread), for the logs

        private func linkUp(sessionPresent: Bool) {
            let now = Self.nowNanos()
            let back: Notice? = state.withLock { s in
                defer {
                    s.link.connectedSince = now
                    s.link.everConnected = true
                    s.link.connects += 1
                    s.link.lostAt = nil
                    s.link.failedAttempts = 0
                    s.link.granted = 0
                    s.link.refused = 0
                }
                s.link.reconnect = s.link.everConnected
                guard s.link.everConnected, let lost = s.link.lostAt else { return nil }
                return .reconnected(downMillis: (now &- lost) / 1_000_000, failedAttempts: s.link.failedAttempts,
                                    sessionPresent: sessionPresent, connects: s.link.connects + 1)
            }
            if let back { notice { _ in back } }
        }

        private func linkDown(reasonCode: Int32) {
            let now = Self.nowNanos()
            let losses: Int? = state.withLock { s in
                guard let since = s.link.connectedSince else { return nil }
                s.link.connectedBefore += now >= since ? now - since : 0
                s.link.connectedSince = nil
                s.link.pendingSubscriptions = []
                // Reason 0: the DISCONNECT we sent (stop, move to another root).
                guard reasonCode != 0 else { return nil }
                s.link.lostAt = now
                s.link.failedAttempts = 0
                s.link.losses += 1
                return s.link.losses
            }
            guard let losses else { return }
            count(.connectionLosses)
            let unacknowledged = connection?.outstanding ?? 0
            notice { _ in .connectionLost(reasonCode: reasonCode, losses: losses, unacknowledged: unacknowledged) }
        }

        private func subscribed(_ mid: Int32, granted: [Int32]) {
            let done: Notice? = state.withLock { s in
                guard s.link.pendingSubscriptions.remove(mid) != nil else { return nil }
                // A granted QoS of 0x80 or more is the broker's refusal (v3.1.1: 0x80; v5: reason codes).
                let refused = granted.filter { $0 < 0 || $0 >= 0x80 }.count
                s.link.refused += refused
                s.link.granted += granted.count - refused
                guard s.link.pendingSubscriptions.isEmpty else { return nil }
                return .subscribed(topics: s.link.granted, refused: s.link.refused, reconnect: s.link.reconnect)
            }
            if let done {
                if case .subscribed(_, let refused, _) = done, refused > 0 { count(.subscribeErrors, refused) }
                notice { _ in done }
            }
        }

        /// Every topic `subscribe()` subscribes.
        var subscriptions: [String] {
            (requestHandler != nil ? [topics.sharedFleetRequests, topics.gatewayRequests] : [])
                + [topics.invalidations, topics.watermarks]
                + (configuration.onConfig != nil ? [topics.fleetConfig, topics.gatewayConfig] : [])
        }

        /// Drops this gateway's subscriptions from its broker session (before it moves to another
        /// topic root: the session outlives this client, and would keep them).
        func unsubscribe() {
            guard let c = connection else { return }
            for topic in subscriptions {
                do { try c.client.unsubscribe(topic) } catch { count(.subscribeErrors) }
            }
        }

        func receiveInvalidation(_ m: MQTTMessage) {
            guard m.payload.count <= Self.maxInvalidationBytes else {
                count(.invalidationsRejected)
                return
            }
            let message: InvalidationMessage
            do { message = try InvalidationMessage(payload: m.payload) } catch {
                count(.invalidationsRejected)
                return
            }
            // Before anything is compared or recorded: a forged message must not move a peer's
            // sequence, drop the cache or leave a trace in the dedup set.
            guard let signer = admit(message, numbered: message.position != nil, watermark: false) else { return }
            if message.origin == topics.gateway {
                count(.invalidationsOwn)
                return
            }
            var verdict = Verdict.baseline
            if let position = message.position {
                verdict = classify(position, origin: message.origin)
                if verdict == .seen {
                    count(.invalidationsDuplicate)
                    return
                }
            } else {
                let identity = "\(message.origin)|\(message.tombstone.hlc.rawValue)|\(message.tombstone.scope)"
                guard state.withLock({ $0.seenInvalidations.insert(identity) }) else {
                    count(.invalidationsDuplicate)
                    return
                }
            }
            if verdict == .gap { dropUnvouched(.sequenceGap(origin: message.origin)) }
            do {
                try target.apply(remote: message.tombstone)
                count(.invalidationsApplied)
                if case .fleet = signer { count(.invalidationsOperator) }
            } catch {
                // Not applied (clock drift, disk error): not recorded, so a redelivery is tried again.
                if message.position == nil {
                    let identity = "\(message.origin)|\(message.tombstone.hlc.rawValue)|\(message.tombstone.scope)"
                    state.withLock { s in s.seenInvalidations = s.seenInvalidations.removing(identity) }
                }
                count(.invalidationsRejected)
                return
            }
            if let position = message.position { record(position, origin: message.origin) }
        }

        func receiveWatermark(_ m: MQTTMessage) {
            guard m.payload.count <= Self.maxInvalidationBytes, let w = try? WatermarkMessage(payload: m.payload),
                  m.topic == "\(topics.root)/cache/watermark/\(w.origin)"
            else {
                count(.watermarksRejected)
                return
            }
            guard admit(w, numbered: true, watermark: true) != nil else { return }
            guard w.origin != topics.gateway else { return }
            switch classify(w.position, origin: w.origin) {
            case .seen:
                return
            case .baseline:
                record(w.position, origin: w.origin)
            case .next, .gap:
                // The peer's broker-acknowledged outbox is ahead of what reached us: we missed some.
                dropUnvouched(.watermarkAhead(origin: w.origin))
                record(w.position, origin: w.origin)
            }
        }

        /// Who signed `message` if the membership admits it (anyone, as a member, when the fleet is
        /// open); nil once the refusal is counted and logged. A fleet key (an operator, who has no
        /// outbox) may not sign a watermark or a numbered invalidation: those are a gateway's
        /// account of its own outbox.
        private func admit(_ message: some SignedPeerMessage, numbered: Bool, watermark: Bool) -> Membership.Signer? {
            guard let membership = configuration.membership else { return .member }
            switch membership.authenticate(origin: message.origin, fleet: topics.fleet, signature: message.signature,
                                           message: message.signedMessage(fleet: topics.fleet)) {
            case .failure(let why):
                refuse(why, origin: message.origin, watermark: watermark)
                return nil
            case .success(.fleet) where numbered:
                refuse(.notAllowed, origin: message.origin, watermark: watermark)
                return nil
            case .success(let signer):
                return signer
            }
        }

        /// Counts (and logs, rate-limited) a message that failed authentication.
        private func refuse(_ why: Membership.Refusal, origin: String, watermark: Bool) {
            count(watermark ? .watermarksRefused(why) : .invalidationsRefused(why))
            let refused = counters.withLock { c in
                c.reduce(0) { n, e in
                    switch e.key {
                    case .invalidationsRefused, .watermarksRefused: n + e.value
                    default: n
                    }
                }
            }
            notice(limit: "message_refused") { held in
                .messageRefused(why, origin: origin, watermark: watermark, refused: refused, suppressed: held)
            }
        }

        func classify(_ p: PeerPosition, origin: String) -> Verdict {
            guard let known = position(origin: origin), known.epoch == p.epoch else { return .baseline }
            if p.sequence <= known.sequence { return .seen }
            return p.sequence == known.sequence + 1 ? .next : .gap
        }

        private func position(origin: String) -> PeerPosition? {
            if let p = state.withLock({ $0.positions[origin] }) { return p }
            guard let p = try? log.peerPosition(origin: origin) else { return nil }
            state.withLock { s in
                if s.positions.count >= 10_000 { s.positions.removeAll() }
                s.positions[origin] = p
            }
            return p
        }

        private func record(_ p: PeerPosition, origin: String) {
            state.withLock { s in
                if s.positions.count >= 10_000 { s.positions.removeAll() }
                s.positions[origin] = p
            }
            do { try log.recordPeerPosition(p, origin: origin) } catch { count(.logErrors) }
        }

        /// Invalidates everything locally (not announced): this gateway cannot prove it saw every
        /// invalidation of its peers.
        func dropUnvouched(_ reason: CacheDropReason) {
            if reason != .sessionLost { count(.gaps) }
            let entries = (target as? any CountingInvalidationTarget)?.entryCount()
            do { _ = try target.invalidate(.all) } catch { count(.invalidationErrors) }
            let drops = state.withLock { s -> Int in
                s.cacheDrops += 1
                return s.cacheDrops
            }
            // Rate-limited: forged gaps could otherwise flood the log (`drops` keeps the count).
            notice(limit: "cache_dropped") { _ in .cacheDropped(reason: reason, entries: entries, drops: drops) }
        }

        // MARK: Outbox

        /// Publishes the next batch of outbox records when connected and no batch awaits PUBACKs.
        func pumpOutbox() {
            guard let c = connection, c.isConnected else { return }
            state.withLock { s in
                guard s.outboxInFlight.isEmpty, !s.shuttingDown else { return }
                let batch: [PendingInvalidation]
                do { batch = try log.pending(limit: Self.outboxBatch) } catch {
                    counters.withLock { $0[.logErrors, default: 0] += 1 }
                    return
                }
                for record in batch {
                    var invalidation = InvalidationMessage(origin: topics.gateway, tombstone: record.tombstone,
                                                           position: PeerPosition(epoch: epoch, sequence: record.sequence))
                    if let identity = configuration.identity { invalidation = invalidation.signed(by: identity, fleet: topics.fleet) }
                    let message = MQTTMessage(topic: topics.invalidations, payload: invalidation.encoded(), qos: 1)
                    // Held under the state lock so a fast PUBACK cannot arrive before the id is recorded.
                    guard let mid = try? c.publish(message, requireConnection: true) else { break }
                    s.outboxInFlight[mid] = record.sequence
                    s.outboxBatchEnd = record.sequence
                }
            }
        }

        private func outboxAcknowledged(_ mid: Int32) {
            let done: Int64? = state.withLock { s in
                guard s.outboxInFlight.removeValue(forKey: mid) != nil else { return nil }
                counters.withLock { $0[.invalidationsPublished, default: 0] += 1 }
                guard s.outboxInFlight.isEmpty, let end = s.outboxBatchEnd else { return nil }
                s.outboxBatchEnd = nil
                return end
            }
            guard let done else { return }
            do { try log.markPublished(through: done) } catch { count(.logErrors) }
            // Tell peers how far the broker has taken our outbox (retained: latecomers see it too).
            if let c = connection {
                var w = WatermarkMessage(origin: topics.gateway, position: PeerPosition(epoch: epoch, sequence: done))
                if let identity = configuration.identity { w = w.signed(by: identity, fleet: topics.fleet) }
                if (try? c.publish(MQTTMessage(topic: topics.watermark, payload: w.encoded(), qos: 1, retain: true),
                                   requireConnection: true)) == nil {
                    count(.publishErrors)
                }
            }
            pumpOutbox()
        }

        // MARK: Status

        static func offlineStatus(gateway: String) -> [UInt8] {
            JSONValue.object(["state": .string("offline"), "gateway": .string(gateway)]).encoded()
        }

        func onlineStatus() async -> [UInt8] {
            let health = await service.health()
            let cache = await service.cacheStatistics()
            var cacheObject: [String: JSONValue] = [:]
            for (k, v) in cache { cacheObject[k] = .number(Double(v)) }
            let uptime = Double(DispatchTime.now().uptimeNanoseconds - startedNanos) / 1e9
            var member: JSONValue = .null
            if let identity = configuration.identity {
                var m: [String: JSONValue] = ["key": .string(Data(identity.publicKey.rawRepresentation).base64EncodedString())]
                if let c = identity.certificate {
                    m["cert"] = .object(["key_id": .string(c.keyID), "sig": .string(Data(c.signature).base64EncodedString())])
                }
                member = .object(m)
            }
            return JSONValue.object([
                "member": member,
                "invalidation_auth": .string(configuration.membership == nil ? "open" : "signed"),
                "state": .string("online"),
                "gateway": .string(topics.gateway),
                "fleet": .string(topics.fleet),
                "ready": .bool(health.ready),
                "model": .string(service.modelName),
                "model_fingerprint": .string(health.modelFingerprint),
                "kernel": .string(health.kernel),
                "config_version": .number(Double(health.configVersion)),
                "config": state.withLock { $0.configStatus } ?? .null,
                "cache": .object(cacheObject),
                "uptime_s": .number((uptime * 1000).rounded() / 1000),
            ]).encoded()
        }

        func publishStatus() async {
            guard let c = connection, c.isConnected else { return }
            let payload = await onlineStatus()
            do {
                try c.publish(MQTTMessage(topic: topics.status, payload: payload, qos: 1, retain: true), requireConnection: true)
                count(.statusPublished)
            } catch {
                count(.publishErrors)
            }
        }

        /// Refreshes the retained status every `statusIntervalSeconds` and retries the outbox every
        /// second (a safety net: it is also pumped on connect, on each acknowledgement and on `announce`).
        func statusLoop() async {
            var lastStatus = UInt64(0)
            let interval = UInt64(max(configuration.statusIntervalSeconds, 0.1) * 1e9)
            while !Task.isCancelled {
                let now = DispatchTime.now().uptimeNanoseconds
                if now - lastStatus >= interval, connection?.isConnected == true {
                    await publishStatus()
                    lastStatus = now
                }
                pumpOutbox()
                do { try await Task.sleep(for: .seconds(1)) } catch { return }
            }
        }

        /// Stops taking requests and publishes the offline status (before the clean DISCONNECT).
        func shutDown() {
            state.withLock { $0.shuttingDown = true }
            guard let c = connection, c.isConnected else { return }
            _ = try? c.publish(MQTTMessage(topic: topics.status, payload: Self.offlineStatus(gateway: topics.gateway),
                                           qos: 1, retain: true), requireConnection: true)
        }

        // MARK: Async side

        func handle(_ event: MQTTEvent, in group: inout DiscardingTaskGroup) {
            switch event {
            case .connected(0, _):
                count(.connects)
                group.addTask { [self] in await publishStatus() }
            case .connectFailed:
                count(.connectFailures)
            case .message(let m):
                if topics.isRequest(m.topic), let handler = requestHandler {
                    handler.accept(m, in: &group)
                } else if let onConfig = configuration.onConfig, m.topic == topics.fleetConfig || m.topic == topics.gatewayConfig {
                    count(.configsReceived)
                    let whole = m.payload.count <= configuration.maxConfigBytes
                    onConfig(ConfigDelivery(source: m.topic == topics.fleetConfig ? .fleet : .gateway, topic: m.topic,
                                            payload: whole ? m.payload : [], byteCount: m.payload.count, retained: m.retain))
                } else {
                    count(.messagesIgnored)
                }
            default:
                break
            }
        }
    }
}

extension RecentSet {
    /// A copy without `element` (rare: only when applying an invalidation failed).
    func removing(_ element: Element) -> RecentSet {
        var copy = RecentSet(capacity: capacity)
        for e in orderedMembers where e != element { _ = copy.insert(e) }
        return copy
    }
}
