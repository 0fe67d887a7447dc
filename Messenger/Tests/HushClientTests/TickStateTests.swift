import Testing
@testable import HushClient

@Suite struct TickStateTests {
    @Test func ticksAreOrderedPendingSentDeliveredRead() {
        #expect(TickState.allCases.sorted() == [.pending, .sent, .delivered, .read])
        #expect(TickState.allCases.map(\.rawValue) == [0, 1, 2, 3])
    }

    @Test func messageIDDescriptionNamesSenderDeviceAndCounter() {
        #expect(MessageID(account: "alice", device: 2, clientMessageID: 7).description == "alice.2#7")
    }
}
