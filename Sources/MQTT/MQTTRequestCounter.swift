/// One of the MQTT request door's counters, counted by the door (`MQTTDoor`) and reported by
/// PeerSync with its own (`PeerSync.Counter.request`). `name` is the snake_case name the agent
/// exports as `outpost_mqtt_<name>`; the refusals and expiries are also reported as a total.
public enum MQTTRequestCounter: Hashable, Sendable {
    case requests
    case replies
    /// Refused before answering (malformed, oversized, invalid fields); an error reply went out
    /// if there was somewhere to reply.
    case requestsRefused
    /// No acceptable reply address: nothing was answered.
    case requestsUnanswerable
    /// A QoS 1 redelivery, answered once already.
    case requestsDuplicate
    case requestsBusy
    case requestsFailed
    /// The request's reply topic was refused (also counted as unanswerable).
    case replyTopicRefused(ReplyTopicRefusal)
    /// The request's v5 Message Expiry passed before its answer went out: not answered.
    case requestExpired(RequestExpiry)
    case errorReplies
    /// A reply the connection would not take.
    case publishErrors

    public var name: String {
        switch self {
        case .requests: "requests"
        case .replies: "replies"
        case .requestsRefused: "requests_refused"
        case .requestsUnanswerable: "requests_unanswerable"
        case .requestsDuplicate: "requests_duplicate"
        case .requestsBusy: "requests_busy"
        case .requestsFailed: "requests_failed"
        case .replyTopicRefused(let why): "reply_topics_refused_\(why.rawValue)"
        case .requestExpired(let when): "requests_expired_\(when.rawValue)"
        case .errorReplies: "error_replies"
        case .publishErrors: "publish_errors"
        }
    }

    /// The total a family of counters is also reported under.
    public var total: String? {
        switch self {
        case .replyTopicRefused: "reply_topics_refused"
        case .requestExpired: "requests_expired"
        default: nil
        }
    }
}
