/// Something about a request an operator should see as one log line (rate-limited by the handler;
/// `suppressed` says how many of the kind were left out since the last one).
public enum MQTTRequestNotice: Sendable, Equatable {
    /// A request named a reply topic the reply policy refuses: nothing was published.
    case replyTopicRefused(ReplyTopicRefusal, topic: String, requestTopic: String, suppressed: Int)
    /// A request's Message Expiry passed before it was answered; it was dropped (and its
    /// generation cancelled when it had started).
    case requestExpired(RequestExpiry, overdueMillis: Int64, suppressed: Int)
}

/// Why a reply topic was refused (a stable word: counter names, logs).
public enum ReplyTopicRefusal: String, Sendable, CaseIterable, Hashable {
    case empty
    case oversized
    /// Control characters, U+0000, or bytes that are not UTF-8.
    case malformed
    case wildcard
    /// Starts with `$` (`$SYS`, `$share`, …).
    case system
    /// In this fleet's topic root.
    case fleetTopic = "fleet_topic"
    /// Shaped like a fleet control topic under another root.
    case controlTopic = "control_topic"
}

/// Where in its life an expired request was dropped (a stable word: counter names, logs).
public enum RequestExpiry: String, Hashable, Sendable, CaseIterable {
    /// On arrival or when its turn came (nothing was generated).
    case beforeStart = "before_start"
    /// While it was being answered (the answer was cancelled).
    case whileAnswering = "while_answering"
}
