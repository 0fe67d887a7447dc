import Foundation
import Testing
@testable import HushCLIKit
import HushClient

/// 1_800_000_000_000 ms is 2027-01-15 08:00:00 UTC.
let t0: UInt64 = 1_800_000_000_000
let utc = TimeZone(identifier: "UTC")!

func outgoing(_ text: String, _ state: TickState, id: UInt64 = 1, seq: Int64 = 1, at: UInt64 = t0) -> StoredMessage {
    StoredMessage(id: MessageID(account: "alice", device: 1, clientMessageID: id), conversation: "bob", direction: .outgoing,
                  body: text, sentAt: at, state: state, sequence: seq)
}

func incoming(_ text: String, id: UInt64 = 1, seq: Int64 = 1, sentAt: UInt64 = t0, serverTime: UInt64 = t0 + 60_000) -> StoredMessage {
    StoredMessage(id: MessageID(account: "bob", device: 1, clientMessageID: id), conversation: "bob", direction: .incoming,
                  body: text, sentAt: sentAt, serverTime: serverTime, state: .delivered, sequence: seq)
}

@Suite struct MessageLineTests {
    @Test func outgoingLinesCarryTheirTicks() {
        let plain = TickState.allCases.map { MessageLine.render(outgoing("hello bob", $0), style: .plain, timeZone: utc) }
        #expect(plain == [["08:00 you: hello bob …"], ["08:00 you: hello bob ✓"], ["08:00 you: hello bob ✓✓"],
                          ["08:00 you: hello bob ✓✓ read"]])
        let ansi = MessageLine.render(outgoing("hello bob", .read), style: .ansi, timeZone: utc)
        #expect(ansi == ["08:00 you: hello bob \u{1B}[34m✓✓\u{1B}[0m"])
        #expect(MessageLine.render(outgoing("hello bob", .delivered), style: .ansi, timeZone: utc) == ["08:00 you: hello bob ✓✓"])
    }

    @Test func incomingLinesShowTheRelayTimeAndNoTicks() {
        #expect(MessageLine.render(incoming("hi"), style: .plain, timeZone: utc) == ["08:01 bob: hi"])
        #expect(MessageLine.render(incoming("hi", serverTime: 0), style: .plain, timeZone: utc) == ["08:00 bob: hi"])
        #expect(MessageLine.render(incoming("hi"), peerLabel: "Bob", style: .plain, timeZone: utc) == ["08:01 Bob: hi"])
        #expect(MessageLine.render(incoming("hi"), style: .plain, timeZone: TimeZone(secondsFromGMT: 3_600)!) == ["09:01 bob: hi"])
    }

    @Test func longTextsWrapAtSpacesUnderTheTextColumn() {
        let lines = MessageLine.render(outgoing("one two three four", .sent), style: .plain, timeZone: utc, width: 20)
        #expect(lines == ["08:00 you: one two", "           three", "           four ✓"])
        // A tick that does not fit goes on its own line.
        let tight = MessageLine.render(outgoing("abcdefghi", .read), style: .plain, timeZone: utc, width: 20)
        #expect(tight == ["08:00 you: abcdefghi", "           ✓✓ read"])
        // A word longer than the room is cut.
        #expect(MessageLine.render(incoming("abcdefghijkl"), style: .plain, timeZone: utc, width: 19)
            == ["08:01 bob: abcdefgh", "           ijkl"])
    }

    @Test func controlCharactersCannotReachTheTerminal() {
        let lines = MessageLine.render(incoming("a\u{1B}[2Jb\rc"), style: .plain, timeZone: utc)
        #expect(lines == ["08:01 bob: a\u{FFFD}[2Jb\u{FFFD}c"])
    }

    @Test func lastSeenSaysTodayOrTheDate() {
        #expect(ClockText.lastSeen(t0, now: t0 + 3_600_000, timeZone: utc) == "today at 08:00")
        #expect(ClockText.lastSeen(t0 - 86_400_000, now: t0, timeZone: utc) == "2027-01-14 08:00")
    }

    @Test func styleFollowsTheTerminalAndNoColor() {
        #expect(TerminalStyle.detect(environment: [:], isTerminal: true) == .ansi)
        #expect(TerminalStyle.detect(environment: ["NO_COLOR": "1"], isTerminal: true) == .plain)
        #expect(TerminalStyle.detect(environment: [:], isTerminal: false) == .plain)
    }
}

@Suite struct ChatScreenTests {
    func screen() -> ChatScreen {
        var s = ChatScreen(me: "alice", peer: "bob")
        s.connection = .online
        s.peerStatus = .online
        s.upsert(incoming("hi alice", id: 7, seq: 1))
        s.upsert(outgoing("hello bob", .delivered, id: 1, seq: 2, at: t0 + 120_000))
        s.input = "how are"
        return s
    }

    @Test func rendersHeaderPresenceMessagesAndInput() {
        let lines = screen().render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0 + 180_000)
        let rule = String(repeating: "─", count: 40)
        #expect(lines == ["hush · alice ⇄ bob · relay online", "bob: online", rule,
                          "", "08:01 bob: hi alice", "08:02 you: hello bob ✓✓", rule, "> how are"])
    }

    @Test func onlyTheNewestMessagesThatFitAreShown() {
        var s = screen()
        s.upsert(outgoing("third", .sent, id: 2, seq: 3, at: t0 + 180_000))
        s.upsert(outgoing("fourth", .pending, id: 3, seq: 4, at: t0 + 240_000))
        let lines = s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0)
        #expect(Array(lines[3..<6]) == ["08:02 you: hello bob ✓✓", "08:03 you: third ✓", "08:04 you: fourth …"])
    }

    @Test func ticksAdvanceAndNeverGoBack() {
        var s = screen()
        let id = MessageID(account: "alice", device: 1, clientMessageID: 1)
        let advanced = s.advance(id, to: .read), back = s.advance(id, to: .sent)
        #expect(advanced && !back)
        s.upsert(outgoing("hello bob", .sent, id: 1, seq: 2, at: t0 + 120_000))
        #expect(s.messages.last?.state == .read)
        let unknown = s.advance(MessageID(account: "x", device: 1, clientMessageID: 1), to: .read)
        #expect(!unknown)
        let lines = s.render(width: 40, height: 8, style: .ansi, timeZone: utc, now: t0)
        #expect(lines[5] == "08:02 you: hello bob \u{1B}[34m✓✓\u{1B}[0m")
        #expect(lines[0] == "\u{1B}[1mhush · alice ⇄ bob · relay online\u{1B}[0m")
    }

    @Test func upsertKeepsSequenceOrder() {
        var s = ChatScreen(me: "alice", peer: "bob")
        s.upsert(outgoing("b", .sent, id: 2, seq: 5))
        s.upsert(outgoing("a", .sent, id: 1, seq: 3))
        s.upsert(outgoing("c", .sent, id: 3, seq: 9))
        #expect(s.messages.map(\.body) == ["a", "b", "c"])
    }

    /// A group chat: the members instead of presence, each incoming line names its sender.
    @Test func aGroupChatNamesEachSender() {
        var s = ChatScreen(me: "alice", peer: "trip")
        s.groupMembers = ["alice", "bob", "carol"]
        s.connection = .online
        let group = "#000102030405060708090a0b0c0d0e0f"
        s.upsert(StoredMessage(id: MessageID(account: "bob", device: 1, clientMessageID: 7), conversation: group, direction: .incoming,
                               body: "hi all", sentAt: t0, serverTime: t0 + 60_000, state: .delivered, sequence: 1))
        s.upsert(StoredMessage(id: MessageID(account: "carol", device: 2, clientMessageID: 3), conversation: group, direction: .incoming,
                               body: "hey", sentAt: t0, serverTime: t0 + 90_000, state: .delivered, sequence: 2))
        let lines = s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0 + 180_000)
        let rule = String(repeating: "─", count: 40)
        #expect(lines == ["hush · alice ⇄ trip · relay online", "members: alice, bob, carol", rule,
                          "", "08:01 bob: hi all", "08:01 carol: hey", rule, "> "])
    }

    @Test func typingReplacesPresenceUntilItExpires() {
        var s = screen()
        s.peerTypingUntil = t0 + 6_000
        #expect(s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0)[1] == "bob: typing…")
        #expect(s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0 + 6_000)[1] == "bob: online")
        s.peerStatus = .lastSeen(t0 - 60_000)
        #expect(s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0 + 6_000)[1] == "bob: last seen today at 07:59")
        s.peerStatus = .hidden
        #expect(s.render(width: 40, height: 8, style: .plain, timeZone: utc, now: t0 + 6_000)[1] == "bob: last seen hidden")
    }

    @Test func connectionStatesAndNotices() {
        var s = screen()
        s.connection = .retrying(seconds: 1.25)
        s.notice = "not sent: relay: not connected"
        let lines = s.render(width: 60, height: 8, style: .plain, timeZone: utc, now: t0)
        #expect(lines[0] == "hush · alice ⇄ bob · relay offline, retrying in 1.2 s")
        #expect(lines[6] == "not sent: relay: not connected")
        s.connection = .connecting
        #expect(s.render(width: 60, height: 8, style: .plain, timeZone: utc, now: t0)[0] == "hush · alice ⇄ bob · relay connecting…")
    }

    @Test func frameDrawsFromHomeAndClearsEachLine() {
        let frame = screen().frame(width: 40, height: 8, style: .plain, timeZone: utc, now: t0)
        #expect(frame.hasPrefix("\u{1B}[H"))
        #expect(frame.hasSuffix("> how are\u{1B}[K\u{1B}[J"))
        #expect(frame.components(separatedBy: "\r\n").count == 8)
    }
}

@Suite struct InputEditorTests {
    @Test func typingEditsAndEnterSubmits() {
        var e = InputEditor()
        do { let got = e.feed(Array("hi".utf8)); #expect(got == [.edited("hi")]) }
        do { let got = e.feed([0x7F]); #expect(got == [.edited("h")]) }
        do { let got = e.feed(Array("ey  \r".utf8)); #expect(got == [.edited("hey  "), .submit("hey")]) }
        #expect(e.text == "")
        do { let got = e.feed([0x0D]); #expect(got == [.edited("")]) }
    }

    @Test func utf8SplitAcrossReadsIsAssembled() {
        var e = InputEditor()
        let bytes = Array("é✓".utf8)
        do { let got = e.feed(bytes[0..<1]); #expect(got == []) }
        do { let got = e.feed(bytes[1..<3]); #expect(got == [.edited("é")]) }
        do { let got = e.feed(bytes[3...]); #expect(got == [.edited("é✓")]) }
    }

    @Test func escapeSequencesAndControlBytesAreIgnored() {
        var e = InputEditor()
        do { let got = e.feed(Array("a\u{1B}[A\u{1B}[1;5Cb\u{01}".utf8)); #expect(got == [.edited("ab")]) }
        do { let got = e.feed([0x15]); #expect(got == [.edited("")]) }
    }

    @Test func ctrlCQuitsAndCtrlDQuitsOnAnEmptyLine() {
        var e = InputEditor()
        do { let got = e.feed([0x61, 0x04]); #expect(got == [.edited("a")]) }
        do { let got = e.feed([0x03, 0x61]); #expect(got == [.quit]) }
        var f = InputEditor()
        do { let got = f.feed([0x04]); #expect(got == [.quit]) }
    }
}
