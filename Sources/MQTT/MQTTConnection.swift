import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A broker connection that stays up: one network thread of its own runs libmosquitto's loop and
/// drives connects and reconnects with `StateMachine` (exponential backoff with jitter, the first
/// connect included), announces session loss, bounds the messages awaiting acknowledgement, and
/// sends a clean DISCONNECT on `stop()`.
///
/// Events arrive on `events`; `observer` (optional) sees them first on the network thread, which
/// lets a caller make something durable before libmosquitto writes the PUBACK (packets queued in
/// a callback are written after it returns).
public final class MQTTConnection: Sendable {
    public struct Options: Sendable {
        public var url: BrokerURL
        public var clientID: String
        public var protocolVersion: MosquittoClient.ProtocolVersion = .v5
        public var keepaliveSeconds: Int32 = 30
        /// How long the broker keeps the session (subscriptions, queued QoS 1 messages) after a disconnect.
        public var sessionExpirySeconds: UInt32 = 7 * 24 * 3600
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var will: MQTTMessage?
        /// Unacknowledged QoS 1 messages the broker may send us at once (v5 Receive Maximum).
        public var receiveMaximum = 64
        /// Our QoS 1 publications awaiting a PUBACK on the wire at once.
        public var sendMaximum = 64
        /// Our QoS 1 publications not yet acknowledged (on the wire or queued); beyond it `publish` refuses.
        public var maxQueued = 4096
        public var initialBackoffMillis: UInt64 = 100
        public var maximumBackoffMillis: UInt64 = 30_000
        public var connAckTimeoutMillis: UInt64 = 10_000
        /// Whether this client held a session before (persisted by the caller across restarts).
        public var hadSession = false
        public var eventBuffer = 65_536

        public init(url: BrokerURL, clientID: String) {
            self.url = url
            self.clientID = clientID
        }
    }

    public let options: Options
    public let client: MosquittoClient
    public var events: AsyncStream<MQTTEvent> { client.events }
    private let shared: Shared
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    private final class Shared: Sendable {
        struct State {
            var machine: StateMachine
            var outstanding = Set<Int32>()
            /// PUBACKs that arrived before `publish` recorded their message id (the loop thread can
            /// be faster than the publishing thread).
            var earlyAcks = Set<Int32>()
            var started = false
            var stopping = false
            var lastError: String?
        }
        let state: Mutex<State>
        init(_ machine: StateMachine) { state = Mutex(State(machine: machine)) }
    }

    public init(options: Options, observer: MosquittoClient.Observer? = nil) throws {
        guard !options.clientID.isEmpty, options.clientID.utf8.count <= 65_535 else {
            throw MQTTError.invalidConfiguration("the client id must be 1 to 65535 bytes")
        }
        guard options.maxQueued > 0 else { throw MQTTError.invalidConfiguration("maxQueued must be positive") }
        self.options = options
        let shared = Shared(StateMachine(
            initialDelayMillis: options.initialBackoffMillis, maximumDelayMillis: options.maximumBackoffMillis,
            connAckTimeoutMillis: options.connAckTimeoutMillis, hadSession: options.hadSession))
        self.shared = shared
        client = try MosquittoClient(
            clientID: options.clientID, cleanStart: false, protocolVersion: options.protocolVersion,
            eventBuffer: options.eventBuffer,
            observer: { event in
                var out: [MQTTEvent] = []
                switch event {
                case .connected(let rc, let sessionPresent):
                    let outcome = shared.state.withLock { s in
                        // Without a session the broker acknowledges nothing from before; libmosquitto
                        // resends what it still holds, and those acknowledgements are counted as early.
                        if !sessionPresent { s.outstanding.removeAll() }
                        return s.machine.connAck(reasonCode: rc, sessionPresent: sessionPresent,
                                                 nowMillis: MQTTConnection.nowMillis(), unit: Double.random(in: 0..<1))
                    }
                    out.append(event)
                    if outcome == .connected(sessionLost: true) { out.append(.sessionLost) }
                case .published(let mid, _):
                    shared.state.withLock { s in
                        if s.outstanding.remove(mid) == nil {
                            if s.earlyAcks.count >= 4096 { s.earlyAcks.removeAll() }
                            s.earlyAcks.insert(mid)
                        }
                    }
                    out.append(event)
                default:
                    out.append(event)
                }
                guard let observer else { return out }
                return out.flatMap { observer($0) }
            })
        try client.setThreaded()
        try client.setTCPNoDelay()
        try client.setFlowLimits(receiveMaximum: options.receiveMaximum, sendMaximum: options.sendMaximum)
        if let user = options.username { try client.setCredentials(username: user, password: options.password) }
        if options.url.tls || options.caFile != nil {
            guard let ca = options.caFile else {
                throw MQTTError.invalidConfiguration("mqtts:// needs a CA file (--mqtt-ca) to verify the broker")
            }
            try client.setTLS(caFile: ca, certFile: options.certFile, keyFile: options.keyFile)
        } else if options.certFile != nil || options.keyFile != nil {
            throw MQTTError.invalidConfiguration("a client certificate needs mqtts:// and a CA file")
        }
        if let will = options.will {
            try client.setWill(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain)
        }
    }

    deinit {
        stop()
    }

    static func nowMillis() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    /// Starts the network thread, which connects at once and keeps reconnecting until `stop()`.
    public func start() {
        let first = shared.state.withLock { s -> Bool in
            guard !s.started else { return false }
            s.started = true
            return true
        }
        guard first else { return }
        // Its own queue: the loop blocks in libmosquitto for as long as the connection lives.
        DispatchQueue(label: "outpost-mqtt").async { [self] in
            self.runNetworkLoop()
            self.finished.signal()
        }
    }

    public var isConnected: Bool { shared.state.withLock { $0.machine.isConnected } }
    public var hadSession: Bool { shared.state.withLock { $0.machine.hadSession } }
    /// The last connect failure, for `/health`.
    public var lastError: String? { shared.state.withLock { $0.lastError } }
    /// Our QoS 1 publications not yet acknowledged.
    public var outstanding: Int { shared.state.withLock { $0.outstanding.count } }

    /// Publishes. QoS 1 messages made while the connection is down are queued by libmosquitto and
    /// sent after the reconnect; beyond `maxQueued` unacknowledged ones, it throws `queueFull`.
    /// With `requireConnection`, refuses (`notConnected`) rather than queue.
    @discardableResult
    public func publish(_ message: MQTTMessage, requireConnection: Bool = false) throws -> Int32 {
        try shared.state.withLock { s throws(MQTTError) in
            if s.stopping { throw .notConnected("publish to \(message.topic)") }
            if requireConnection, !s.machine.isConnected { throw .notConnected("publish to \(message.topic)") }
            if message.qos > 0, s.outstanding.count >= options.maxQueued {
                throw .queueFull("publish to \(message.topic)", limit: options.maxQueued)
            }
        }
        let mid = try client.publishKeepingQueued(message)
        if message.qos > 0 {
            shared.state.withLock { s in
                if s.earlyAcks.remove(mid) == nil { s.outstanding.insert(mid) }
            }
        }
        wake.signal()
        return mid
    }

    /// Sends DISCONNECT (so the will is not published), stops the network thread and waits for it.
    public func stop() {
        let running = shared.state.withLock { s -> Bool in
            guard s.started, !s.stopping else { return false }
            s.stopping = true
            return true
        }
        guard running else { return }
        wake.signal()
        finished.wait()
    }

    // MARK: Network thread

    private func runNetworkLoop() {
        var action = shared.state.withLock { $0.machine.start(nowMillis: Self.nowMillis()) }
        while !shared.state.withLock({ $0.stopping }) {
            switch action {
            case .connect:
                do {
                    try client.connect(host: options.url.host, port: options.url.port, keepalive: options.keepaliveSeconds,
                                       sessionExpiry: options.sessionExpirySeconds)
                    action = .pump
                } catch {
                    let detail = "\(error)"
                    action = shared.state.withLock { s in
                        s.lastError = detail
                        return s.machine.connectFailed(nowMillis: Self.nowMillis(), unit: Double.random(in: 0..<1))
                    }
                    if case .wait(let until) = action {
                        let now = Self.nowMillis()
                        client.events(yield: .connectFailed(detail: detail, retryInMillis: until > now ? until - now : 0))
                    }
                }
            case .pump:
                let rc = client.loop(timeoutMillis: 50)
                let now = Self.nowMillis()
                action = shared.state.withLock { s in
                    if rc != 0 || s.machine.connAckOverdue(nowMillis: now) {
                        if rc != 0 { s.lastError = "network loop: rc \(rc)" }
                        return s.machine.connectionLost(nowMillis: now, unit: Double.random(in: 0..<1))
                    }
                    return s.machine.next(nowMillis: now)
                }
            case .wait(let until):
                let now = Self.nowMillis()
                if until > now { _ = wake.wait(timeout: .now() + .milliseconds(Int(min(until - now, 60_000)))) }
                action = shared.state.withLock { $0.machine.next(nowMillis: Self.nowMillis()) }
            case .none:
                action = shared.state.withLock { $0.machine.next(nowMillis: Self.nowMillis()) }
                if action == .none { _ = wake.wait(timeout: .now() + .milliseconds(100)) }
            }
        }
        // Stopping: a clean DISCONNECT after whatever is queued, then a few turns to write it.
        let wasConnected = shared.state.withLock { s -> Bool in
            let c = s.machine.isConnected
            s.machine.stop()
            return c
        }
        if wasConnected, (try? client.disconnect()) != nil {
            let deadline = Self.nowMillis() + 2_000
            while Self.nowMillis() < deadline, client.loop(timeoutMillis: 20) == 0 {}
        }
    }
}

