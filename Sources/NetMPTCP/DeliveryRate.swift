import NetMPWire

/// One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation 3.3): how many
/// bytes reached the receiver over how long, measured from the most recently sent data
/// this ACK newly delivered, and that data's round-trip time in microseconds (the
/// timestamp option only has milliseconds, too coarse for a model of this link).
public struct RateSample: Sendable, Equatable {
    /// Bytes delivered (cumulatively ACKed or SACKed) between that data's send and now.
    public var delivered: Int
    /// The longer of its send and ACK intervals, so neither burst inflates the rate.
    public var interval: Interval
    /// The connection's delivered count when that data was sent: rounds are counted by it.
    public var priorDelivered: Int
    /// Sent while the application had nothing more to send: the rate says little.
    public var applicationLimited: Bool
    public var roundTrip: Interval
    /// Bytes this ACK newly delivered.
    public var newlyDelivered: Int

    public init(delivered: Int, interval: Interval, priorDelivered: Int, applicationLimited: Bool,
                roundTrip: Interval, newlyDelivered: Int) {
        self.delivered = delivered; self.interval = interval; self.priorDelivered = priorDelivered
        self.applicationLimited = applicationLimited; self.roundTrip = roundTrip; self.newlyDelivered = newlyDelivered
    }

    /// Bytes per second.
    public var rate: Double {
        interval.nanoseconds == 0 ? 0 : Double(delivered) * 1e9 / Double(interval.nanoseconds)
    }
}

/// The sender's side of delivery-rate estimation: the delivered count and its clock, and
/// what each transmission of new data saw of them. A connection keeps one; only a
/// congestion controller that models the path (BBR) asks it to record anything, and its
/// records live in a ring that grows a few times in a connection's life (`DeliveryRecords`),
/// never an allocation per segment.
public struct DeliveryRateEstimator: Sendable {
    /// Bytes cumulatively ACKed or SACKed so far, and when the count last grew.
    public private(set) var delivered = 0
    var deliveredTime = Instant.zero
    /// When the data whose delivery last produced a sample was sent: the start of the
    /// next sample's send interval.
    var firstSentTime = Instant.zero
    /// Until `delivered` passes this, the flight is shorter than the window because the
    /// application did not fill it (0: not limited).
    var applicationLimitedUntil = 0
    var records: DeliveryRecords? = nil
    /// Transmissions remembered at once; more are merged into the newest.
    public static var recordCapacity: Int { DeliveryRecords.capacity }

    public init() {}

    /// New data up to `end` goes out now; `flight` was in the network before it.
    public mutating func sent(end: SequenceNumber, flight: Int, now: Instant) {
        if flight == 0 { firstSentTime = now; deliveredTime = now } // a fresh start after idle
        if records == nil { records = DeliveryRecords() }
        records!.append(DeliveryRecord(sent: now, delivered: delivered, deliveredTime: deliveredTime,
                                       firstSentTime: firstSentTime, end: end, applicationLimited: applicationLimitedUntil != 0))
    }

    /// The application left the window unfilled: samples until this flight is delivered
    /// come from a path that was not full (the draft's C.app_limited).
    public mutating func applicationLimited(flight: Int) { applicationLimitedUntil = max(delivered + flight, 1) }

    /// An ACK delivered `newly` more bytes, and everything sent up to `highest` is either
    /// delivered or behind a hole: a sample from the latest such record, if there is one.
    public mutating func acknowledged(newly: Int, highest: SequenceNumber, now: Instant) -> RateSample? {
        guard newly > 0 else { return nil }
        delivered += newly
        deliveredTime = now
        if applicationLimitedUntil != 0 && delivered > applicationLimitedUntil { applicationLimitedUntil = 0 }
        guard let record = records?.removeThrough(highest) else { return nil }
        firstSentTime = record.sent
        let sendInterval = record.sent - record.firstSentTime
        let ackInterval = now - record.deliveredTime
        return RateSample(delivered: delivered - record.delivered, interval: max(sendInterval, ackInterval),
                          priorDelivered: record.delivered, applicationLimited: record.applicationLimited,
                          roundTrip: now - record.sent, newlyDelivered: newly)
    }

    /// A retransmission timeout: what is recorded will be sent again, so forget it.
    public mutating func forgetSent() { records?.removeAll() }
}

/// (The 32-bit sequence number and the flag last: 40 bytes a record, not 48.)
struct DeliveryRecord: Sendable {
    var sent: Instant
    var delivered: Int
    var deliveredTime: Instant
    var firstSentTime: Instant
    var end: SequenceNumber
    var applicationLimited: Bool
}

/// A ring of records in send order. It starts small (an idle or request-response
/// connection never needs more) and doubles up to `capacity` as the flight grows, so the
/// allocations are a handful per connection, never one per segment. Full, the newest
/// record grows to cover the next transmission too: samples get coarser (a longer
/// interval, more bytes), never wrong.
final class DeliveryRecords: @unchecked Sendable {
    static let capacity = 64
    static let initialCapacity = 2
    private var slots = UnsafeMutablePointer<DeliveryRecord>.allocate(capacity: DeliveryRecords.initialCapacity)
    private var size = DeliveryRecords.initialCapacity
    private var first = 0, count = 0

    deinit { slots.deallocate() } // records are plain values: nothing to deinitialize

    func append(_ record: DeliveryRecord) {
        if count == size && size < Self.capacity { grow() }
        if count == size {
            slots[(first + count - 1) % size].end = record.end
            return
        }
        (slots + (first + count) % size).initialize(to: record)
        count += 1
    }

    private func grow() {
        let larger = UnsafeMutablePointer<DeliveryRecord>.allocate(capacity: size * 2)
        for i in 0..<count { (larger + i).initialize(to: slots[(first + i) % size]) }
        slots.deallocate()
        slots = larger
        size *= 2
        first = 0
    }

    /// Removes every record whose data ends at or below `sequence`; the last one removed.
    func removeThrough(_ sequence: SequenceNumber) -> DeliveryRecord? {
        var last: DeliveryRecord? = nil
        while count > 0, !(sequence < slots[first].end) {
            last = slots[first]
            first = (first + 1) % size
            count -= 1
        }
        return last
    }

    func removeAll() { first = 0; count = 0 }
}
