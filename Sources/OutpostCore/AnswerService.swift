/// Everything a front door may ask of the agent: answering queries and the admin calls. A door
/// that serves both (HTTP, MQTT with its status reports) takes this; a type conforms to it by
/// conforming to both, as `Codable` is `Decodable & Encodable`.
public typealias AnswerService = QueryAnswering & AdminService
