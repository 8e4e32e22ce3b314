import CMosquitto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The one thin wrapper over libmosquitto: every call that returns a `MOSQ_ERR_*` code throws a
/// `MQTTError` instead, and the callbacks (which run on libmosquitto's network thread) are
/// turned into `MQTTEvent`s on an `AsyncStream`, handed over through a `Sendable` box passed as
/// libmosquitto's userdata.
public final class MosquittoClient: @unchecked Sendable {
    // @unchecked: `handle` is set once in init and libmosquitto's API is thread-safe for the calls
    // made here (publish/subscribe from any thread while the loop thread runs).
    public enum ProtocolVersion: Int32, Sendable {
        case v311 = 4
        case v5 = 5
    }

    public let clientID: String
    public let protocolVersion: ProtocolVersion
    public let events: AsyncStream<MQTTEvent>
    private let handle: OpaquePointer
    private let box: Unmanaged<EventBox>
    private var loopRunning = false

    /// Sees every event first, on the network thread, and returns the events to put on the stream
    /// (the event itself, nothing, or more).
    public typealias Observer = @Sendable (MQTTEvent) -> [MQTTEvent]

    /// The state the C callbacks see: the stream's continuation and the observer, both Sendable.
    final class EventBox: Sendable {
        let continuation: AsyncStream<MQTTEvent>.Continuation
        let observer: Observer?
        /// Events not delivered because the stream's buffer was full.
        let dropped = Atomic<Int>(0)
        init(_ continuation: AsyncStream<MQTTEvent>.Continuation, observer: Observer?) {
            self.continuation = continuation
            self.observer = observer
        }

        func deliver(_ event: MQTTEvent) {
            guard let observer else {
                yield(event)
                return
            }
            for e in observer(event) { yield(e) }
        }

        private func yield(_ event: MQTTEvent) {
            if case .dropped = continuation.yield(event) { dropped.wrappingAdd(1, ordering: .relaxed) }
        }
    }

    private static let libraryInit: Void = { _ = mosquitto_lib_init() }()

    /// - Parameters:
    ///   - cleanStart: false keeps the session (subscriptions, queued QoS 1 messages) across reconnects.
    ///   - eventBuffer: how many undelivered events are kept before the oldest unread are kept and new ones dropped.
    ///   - observer: sees each event first on the network thread (see `Observer`).
    public init(clientID: String, cleanStart: Bool, protocolVersion: ProtocolVersion = .v5, eventBuffer: Int = 10_000,
                observer: Observer? = nil) throws {
        _ = Self.libraryInit
        self.clientID = clientID
        self.protocolVersion = protocolVersion
        var continuation: AsyncStream<MQTTEvent>.Continuation!
        events = AsyncStream(bufferingPolicy: .bufferingOldest(eventBuffer)) { continuation = $0 }
        let box = Unmanaged.passRetained(EventBox(continuation, observer: observer))
        guard let h = mosquitto_new(clientID, cleanStart, box.toOpaque()) else {
            box.release()
            throw MQTTError.mosquitto(Int32(MOSQ_ERR_NOMEM.rawValue), "mosquitto_new")
        }
        handle = h
        self.box = box
        do {
            try check(mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, protocolVersion.rawValue), "set protocol version")
        } catch {
            mosquitto_destroy(h)
            box.release()
            throw error
        }
        installCallbacks()
    }

    deinit {
        if loopRunning { mosquitto_loop_stop(handle, true) }
        mosquitto_destroy(handle)
        box.takeUnretainedValue().continuation.finish()
        box.release()
    }

    private func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
        if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) { throw MQTTError.mosquitto(rc, operation()) }
    }

    private static func box(_ userdata: UnsafeMutableRawPointer?) -> EventBox? {
        userdata.map { Unmanaged<EventBox>.fromOpaque($0).takeUnretainedValue() }
    }

    private func installCallbacks() {
        mosquitto_connect_v5_callback_set(handle) { _, userdata, rc, flags, _ in
            MosquittoClient.box(userdata)?.deliver(.connected(reasonCode: rc, sessionPresent: flags & 1 == 1))
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, rc, _ in
            MosquittoClient.box(userdata)?.deliver(.disconnected(reasonCode: rc))
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, rc, _ in
            MosquittoClient.box(userdata)?.deliver(.published(messageID: mid, reasonCode: rc))
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            let qos = (0..<Int(max(count, 0))).map { granted?[$0] ?? -1 }
            MosquittoClient.box(userdata)?.deliver(.subscribed(messageID: mid, grantedQoS: qos))
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, props in
            guard let message, let box = MosquittoClient.box(userdata) else { return }
            box.deliver(.message(MosquittoClient.convert(message.pointee, props)))
        }
    }

    /// Copies a message out of libmosquitto's memory (valid only during the callback).
    private static func convert(_ m: mosquitto_message, _ props: OpaquePointer?) -> MQTTMessage {
        let topic = m.topic.map { String(cString: $0) } ?? ""
        var payload: [UInt8] = []
        if let p = m.payload, m.payloadlen > 0 {
            payload = Array(UnsafeRawBufferPointer(start: p, count: Int(m.payloadlen)))
        }
        var responseTopic: String?
        var responseTopicMalformed = false
        var correlation: [UInt8]?
        var expiry: UInt32?
        if let props {
            var value: UnsafeMutablePointer<CChar>?
            if mosquitto_property_read_string(props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &value, false) != nil, let value {
                // Not repaired: a reply address with bad bytes would be another address.
                let bytes = UnsafeRawBufferPointer(start: value, count: strlen(value)).bindMemory(to: UInt8.self)
                responseTopic = String(validating: bytes, as: UTF8.self)
                responseTopicMalformed = responseTopic == nil
                free(value)
            }
            var seconds: UInt32 = 0
            if mosquitto_property_read_int32(props, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), &seconds, false) != nil {
                expiry = seconds
            }
            var data: UnsafeMutableRawPointer?
            var length: UInt16 = 0
            if mosquitto_property_read_binary(props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &data, &length, false) != nil {
                correlation = data.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(length))) } ?? []
                free(data)
            }
        }
        var message = MQTTMessage(topic: topic, payload: payload, qos: m.qos, retain: m.retain,
                                  responseTopic: responseTopic, correlationData: correlation, messageExpiryInterval: expiry)
        message.responseTopicMalformed = responseTopicMalformed
        return message
    }

    /// Events dropped because nobody read `events` fast enough (its buffer was full).
    public var droppedEvents: Int { box.takeUnretainedValue().dropped.load(ordering: .relaxed) }

    /// Puts an event on `events` (for the owner of the network thread: connect failures).
    func events(yield event: MQTTEvent) {
        box.takeUnretainedValue().deliver(event)
    }

    // MARK: Calls

    public func setCredentials(username: String, password: String?) throws {
        try check(mosquitto_username_pw_set(handle, username, password), "set username and password")
    }

    /// TLS with a CA file and, optionally, a client certificate and key.
    public func setTLS(caFile: String, certFile: String?, keyFile: String?) throws {
        try check(mosquitto_tls_set(handle, caFile, nil, certFile, keyFile, nil), "set TLS files")
    }

    /// A retained Last Will, sent by the broker if the connection drops without a DISCONNECT.
    public func setWill(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = true) throws {
        let rc = payload.withUnsafeBytes { mosquitto_will_set(handle, topic, Int32($0.count), $0.baseAddress, qos, retain) }
        try check(rc, "set will on \(topic)")
    }

    /// Delay bounds for libmosquitto's own reconnects while the loop thread runs.
    public func setReconnectDelay(initial: UInt32, maximum: UInt32, exponential: Bool = true) throws {
        try check(mosquitto_reconnect_delay_set(handle, initial, maximum, exponential), "set reconnect delay")
    }

    /// Starts the network thread. Call before `connect` so a first connect that fails is retried
    /// by `reconnect()` rather than leaving no loop behind.
    public func startLoop() throws {
        guard !loopRunning else { return }
        try check(mosquitto_loop_start(handle), "start network loop")
        loopRunning = true
    }

    /// Connects the socket and sends CONNECT; the CONNACK arrives as `.connected` on the loop
    /// thread. The TCP connect itself blocks (libmosquitto has no asynchronous connect that takes
    /// v5 properties), so call this off latency-sensitive paths. `sessionExpiry` (seconds) keeps a
    /// v5 session for that long after a disconnect; libmosquitto reuses it on reconnects.
    public func connect(host: String, port: Int, keepalive: Int32 = 30, sessionExpiry: UInt32? = nil) throws {
        var props: OpaquePointer?
        defer { mosquitto_property_free_all(&props) }
        if protocolVersion == .v5, let sessionExpiry {
            try check(mosquitto_property_add_int32(&props, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), sessionExpiry),
                      "add session expiry")
        }
        try check(mosquitto_connect_bind_v5(handle, host, Int32(port), keepalive, nil, props), "connect to \(host):\(port)")
    }

    public func reconnect() throws {
        try check(mosquitto_reconnect_async(handle), "reconnect")
    }

    /// Subscribes; returns the message id that the `.subscribed` event will carry. v5 only:
    /// `noLocal` asks the broker not to send this client its own publications (not allowed on a
    /// shared subscription); `retained: false` asks it never to send retained messages.
    @discardableResult
    public func subscribe(_ pattern: String, qos: Int32 = 1, noLocal: Bool = false, retained: Bool = true) throws -> Int32 {
        var mid: Int32 = 0
        if protocolVersion == .v5 {
            var options = noLocal ? Int32(MQTT_SUB_OPT_NO_LOCAL.rawValue) : 0
            if !retained { options |= Int32(MQTT_SUB_OPT_SEND_RETAIN_NEVER.rawValue) }
            try check(mosquitto_subscribe_v5(handle, &mid, pattern, qos, options, nil), "subscribe to \(pattern)")
        } else {
            try check(mosquitto_subscribe(handle, &mid, pattern, qos), "subscribe to \(pattern)")
        }
        return mid
    }

    /// Unsubscribes; returns the message id of the UNSUBSCRIBE.
    @discardableResult
    public func unsubscribe(_ pattern: String) throws -> Int32 {
        var mid: Int32 = 0
        try check(mosquitto_unsubscribe(handle, &mid, pattern), "unsubscribe from \(pattern)")
        return mid
    }

    /// Bounds the QoS 1 messages in flight: `receiveMaximum` (v5, announced to the broker: how many
    /// unacknowledged messages it may send us) and `sendMaximum` (how many of ours may await a PUBACK;
    /// libmosquitto queues the rest).
    public func setFlowLimits(receiveMaximum: Int, sendMaximum: Int) throws {
        let receive = Int32(min(max(receiveMaximum, 1), 65_535))
        let send = Int32(min(max(sendMaximum, 1), 65_535))
        if protocolVersion == .v5 {
            try check(mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, receive), "set receive maximum")
            try check(mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, send), "set send maximum")
        } else {
            try check(mosquitto_max_inflight_messages_set(handle, UInt32(send)), "set in-flight maximum")
        }
    }

    /// Tells libmosquitto that other threads publish while one thread of the caller's runs
    /// `loop(timeoutMillis:)`, so packets are queued for the loop thread instead of written from
    /// the caller's thread. Not with `startLoop()` (libmosquitto's own thread), which refuses it.
    public func setThreaded() throws {
        try check(mosquitto_threaded_set(handle, true), "set threaded mode")
    }

    /// Sends small packets at once (replies are latency-bound, not throughput-bound).
    public func setTCPNoDelay() throws {
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "set TCP_NODELAY")
    }

    /// One turn of the network loop on the calling thread (for a caller that owns the loop thread):
    /// waits up to `timeoutMillis` for traffic, reads, writes, keeps alive. Returns libmosquitto's
    /// code: success, or why the connection is unusable (the caller reconnects).
    public func loop(timeoutMillis: Int32) -> Int32 {
        mosquitto_loop(handle, timeoutMillis, 1)
    }

    /// Publishes; returns the message id that the `.published` event will carry.
    @discardableResult
    public func publish(_ message: MQTTMessage) throws -> Int32 {
        let (rc, mid) = try publishReturningCode(message)
        try check(rc, "publish to \(message.topic)")
        return mid
    }

    /// Publishes and reports whether libmosquitto kept the message: a QoS ≥ 1 message published
    /// without a connection is queued in its session state and sent after the reconnect (it then
    /// reports `MOSQ_ERR_NO_CONN` although the message is kept).
    func publishKeepingQueued(_ message: MQTTMessage) throws -> Int32 {
        let (rc, mid) = try publishReturningCode(message)
        if rc == Int32(MOSQ_ERR_NO_CONN.rawValue), message.qos > 0, mid != 0 { return mid }
        try check(rc, "publish to \(message.topic)")
        return mid
    }

    private func publishReturningCode(_ message: MQTTMessage) throws -> (Int32, Int32) {
        var mid: Int32 = 0
        var props: OpaquePointer?
        defer { mosquitto_property_free_all(&props) }
        if protocolVersion == .v5 {
            if let t = message.responseTopic {
                try check(mosquitto_property_add_string(&props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), t), "add response topic")
            }
            if let c = message.correlationData {
                let rc = c.withUnsafeBytes {
                    mosquitto_property_add_binary(&props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), $0.baseAddress, UInt16(clamping: $0.count))
                }
                try check(rc, "add correlation data")
            }
            if let e = message.messageExpiryInterval {
                try check(mosquitto_property_add_int32(&props, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), e),
                          "add message expiry")
            }
        }
        let rc = message.payload.withUnsafeBytes {
            mosquitto_publish_v5(handle, &mid, message.topic, Int32($0.count), $0.baseAddress, message.qos, message.retain, props)
        }
        return (rc, mid)
    }

    public func disconnect() throws {
        try check(mosquitto_disconnect(handle), "disconnect")
    }

    /// The connection's socket, or -1 (for tests that cut the connection as a network failure would).
    var socketDescriptor: Int32 { mosquitto_socket(handle) }



    /// Stops the network thread (after `disconnect`, or forcibly).
    public func stopLoop(force: Bool = false) {
        guard loopRunning else { return }
        mosquitto_loop_stop(handle, force)
        loopRunning = false
    }
}
