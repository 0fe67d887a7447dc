import Foundation
import Hush
import HushClient

/// `hush chat NAME`: the screen, live. Events from the client and keys from the terminal update
/// a ``ChatScreen``, which is redrawn whole after every change (and every second, for the typing
/// indicator's expiry and last seen).
public actor ChatSession {
    private let account: Account
    /// The conversation: the contact's account, or the group's `#…` conversation.
    private let peer: String
    /// The group of a group chat (`hush chat --group`), as it was when the chat opened.
    private let group: GroupState?
    private let style: TerminalStyle
    private let timeZone: TimeZone
    private var screen: ChatScreen
    private var editor = InputEditor()
    private var typingSentAt: UInt64?
    private var finished = false
    /// How often "typing…" is renewed while the draft is not empty (ms); the engine's TTL is 6 s.
    static let typingRenewal: UInt64 = 3_000

    public init(account: Account, peer: String, style: TerminalStyle, timeZone: TimeZone = .current) {
        self.account = account
        self.peer = peer
        group = nil
        self.style = style
        self.timeZone = timeZone
        screen = ChatScreen(me: account.config.account, peer: peer)
    }

    /// A group chat: messages go to every member (one envelope), each incoming line names its
    /// sender, the header lists the members. No typing indicator or presence; no files yet.
    public init(account: Account, group: GroupState, style: TerminalStyle, timeZone: TimeZone = .current) {
        self.account = account
        peer = group.id.conversation
        self.group = group
        self.style = style
        self.timeZone = timeZone
        screen = ChatScreen(me: account.config.account, peer: group.name.isEmpty ? group.id.conversation : group.name)
        screen.groupMembers = group.members
    }

    private var now: UInt64 { account.client.configuration.clock() }

    /// Runs until Ctrl-C, Ctrl-D or `/quit` (or the end of standard input).
    public func run() async throws {
        let client = account.client
        for m in (try? await client.messages(in: peer, limit: ChatScreen.maxMessages)) ?? [] { screen.upsert(m) }
        let terminal = Terminal()
        terminal.enterRawMode()
        defer {
            terminal.restore()
            Terminal.write("\r\n")
        }
        redraw()
        await client.start()
        if group == nil { try? await client.subscribePresence([peer]) }
        let events = Task { [client] in
            for await event in client.events {
                if await self.handle(event) { break }
            }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await self.tick()
            }
        }
        for await bytes in Terminal.inputBytes() {
            for action in editor.feed(bytes) { await perform(action) }
            if finished { break }
        }
        finished = true
        ticker.cancel()
        events.cancel()
        if typingSentAt != nil { _ = await client.setTyping(false, to: peer) }
        // Whatever was typed goes out before leaving (bounded).
        try? await account.flush(timeout: .seconds(3))
    }

    private func perform(_ action: InputEditor.Action) async {
        let client = account.client
        switch action {
        case .quit:
            finished = true
        case .edited(let text):
            screen.input = text
            if text.isEmpty {
                if typingSentAt != nil { _ = await client.setTyping(false, to: peer); typingSentAt = nil }
            } else if typingSentAt == nil {
                typingSentAt = now
                _ = await client.setTyping(true, to: peer)
            }
            redraw()
        case .submit(let text):
            screen.input = ""
            if text == "/quit" { finished = true; return }
            if typingSentAt != nil { _ = await client.setTyping(false, to: peer); typingSentAt = nil }
            if let group {
                do {
                    let id = try await client.sendGroup(text, to: group.id)
                    if let m = try? account.store.message(id) { screen.upsert(m) }
                    screen.notice = text.hasPrefix("/file ") ? "files to groups are not supported yet: sent as text" : nil
                } catch {
                    screen.notice = "not sent: " + Account.describe(error).description
                }
                redraw()
                return
            }
            if text.hasPrefix("/file ") {
                let path = (String(text.dropFirst(6)).trimmingCharacters(in: .whitespaces) as NSString).expandingTildeInPath
                let url = URL(fileURLWithPath: path)
                screen.notice = "sending \(url.lastPathComponent)…"
                redraw()
                do {
                    let id = try await client.sendMedia(file: url, contentType: MediaCLI.contentType(forFileName: url.lastPathComponent),
                                                        to: peer, library: MediaCLI.library(account.home))
                    if let m = try? account.store.message(id) { screen.upsert(m) }
                    screen.notice = nil
                } catch {
                    screen.notice = "not sent: \(url.lastPathComponent): \(error)"
                }
                redraw()
                return
            }
            do {
                let id = try await client.send(text, to: peer)
                if let m = try? account.store.message(id) { screen.upsert(m) }
                screen.notice = nil
            } catch {
                screen.notice = "not sent: " + Account.describe(error, recipient: peer).description
            }
            redraw()
        }
    }

    /// Applies `event`; returns true once the session is over.
    private func handle(_ event: ClientEvent) async -> Bool {
        guard !finished else { return true }
        let client = account.client
        switch event {
        case .connection(let state):
            screen.connection = Self.status(state)
            if state == .online { _ = try? await client.markRead(peer) }
        case .message(let m):
            if m.conversation == peer {
                screen.upsert(m)
                if screen.connection == .online { _ = try? await client.markRead(peer) }
                // A received file: checked, decrypted and saved under Media/ in the background.
                let account = self.account
                Task {
                    if let line = await MediaCLI.save(account, m) { await self.notify(line) }
                }
            } else {
                screen.notice = "new message from \(m.conversation) (hush chat \(m.conversation))"
            }
        case .tick(let id, let state):
            screen.advance(id, to: state)
        case .groupChanged(let g) where g.id == group?.id:
            screen.groupMembers = g.members
            if !g.isMember(account.config.account) { screen.notice = "you are no longer a member of this group" }
        case .presence(let p) where p.account == peer:
            screen.peerStatus = p.hidden ? .hidden : p.online ? .online : p.lastSeen.map { .lastSeen($0) } ?? .unknown
            if p.online == false { screen.peerTypingUntil = nil }
        case .typing(let who, let isTyping, let expiresAt) where who == peer:
            screen.peerTypingUntil = isTyping ? expiresAt : nil
        case .identityChanged(let who):
            screen.notice = "\(who)'s identity key changed: check `hush verify \(who)`, then `hush verify \(who) --approve`"
        case .sendFailed(_, let code):
            screen.notice = "a message could not be sent: \(code)"
        case .sendRefused(_, let reason):
            screen.notice = "a message was not sent: \(Account.describe(reason).description)"
        default:
            return false
        }
        redraw()
        return false
    }

    private func notify(_ line: String) {
        guard !finished else { return }
        screen.notice = line
        redraw()
    }

    private func tick() async {
        if let sent = typingSentAt, !screen.input.isEmpty, now >= sent + Self.typingRenewal {
            typingSentAt = now
            _ = await account.client.setTyping(true, to: peer)
        }
        if let until = screen.peerTypingUntil, until <= now { screen.peerTypingUntil = nil }
        redraw()
    }

    static func status(_ state: ConnectionState) -> LinkStatus {
        switch state {
        case .offline: .offline
        case .connecting: .connecting
        case .syncing: .syncing
        case .online: .online
        case .waiting(_, let delay):
            .retrying(seconds: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        case .failed(let code): .failed("\(code)")
        case .removed: .failed("this device was removed from the account")
        }
    }

    private func redraw() {
        guard !finished else { return }
        let size = Terminal.size()
        Terminal.write(screen.frame(width: size.width, height: size.height, style: style, timeZone: timeZone, now: now))
    }
}
