import MQTT

extension PeerSync.Core {
    /// What the request handler (`MQTTDoor`'s door) is given of this core: the topics, the
    /// connection replies go out on, the redelivery window's clock, whether it is shutting down,
    /// and where its notices go (onto `PeerSync.notices`). Weak: the core holds the handler.
    var requestHost: MQTTRequestHost {
        MQTTRequestHost(
            topics: topics,
            connection: { [weak self] in self?.connection },
            connectedClock: { [weak self] in
                self?.state.withLock { $0.link.connectedClock(now: Self.nowNanos()) } ?? 0
            },
            isShuttingDown: { [weak self] in self?.state.withLock { $0.shuttingDown } ?? true },
            notice: { [weak self] n in
                switch n {
                case .replyTopicRefused(let why, let topic, let requestTopic, let suppressed):
                    self?.notices.yield(.replyTopicRefused(why, topic: topic, requestTopic: requestTopic, suppressed: suppressed))
                case .requestExpired(let when, let overdue, let suppressed):
                    self?.notices.yield(.requestExpired(when, overdueMillis: overdue, suppressed: suppressed))
                }
            })
    }

    /// At most 256 characters of `text`, control characters shown as `?` (it goes into a log line).
    static func printable(_ text: String) -> String {
        LogRateLimiter.printable(text)
    }
}
