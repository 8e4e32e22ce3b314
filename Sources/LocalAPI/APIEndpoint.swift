import HTTPTypes

/// The API's endpoints, each with the one method it answers. `LocalAPIServer` registers its
/// routes from here and answers a known path asked with another method 405, naming the method in
/// `Allow`; `ConnectionHandler` lets only the cheap ones through on a reserved connection.
enum APIEndpoint: String, CaseIterable, Sendable {
    case chatCompletions = "/v1/chat/completions"
    case completions = "/v1/completions"
    case models = "/v1/models"
    case health = "/health"
    case metrics = "/metrics"
    case cacheStatistics = "/v1/cache/stats"
    case cacheInvalidate = "/v1/cache/invalidate"

    var path: String { rawValue }

    var method: HTTPRequest.Method {
        switch self {
        case .chatCompletions, .completions, .cacheInvalidate: .post
        case .models, .health, .metrics, .cacheStatistics: .get
        }
    }

    /// Whether a reserved connection answers it: health, models and the admin endpoints, cheap
    /// (none waits for the model) and what an operator needs on a saturated agent.
    var isServedOnReserve: Bool {
        switch self {
        case .chatCompletions, .completions: false
        case .models, .health, .metrics, .cacheStatistics, .cacheInvalidate: true
        }
    }
}
