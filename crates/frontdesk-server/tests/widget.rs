//! The embeddable chat widget (`widget/chat-widget.js`, docs/widget.md): its size budget, how the
//! binary serves it, and the guide's two snippets on a partner's page in real headless Chromium.
//!
//! The partner's page comes from a second origin, a tiny HTTP server in the test on
//! `http://localhost:<port>`, while Frontdesk listens on `http://127.0.0.1:<port>`: every API
//! call and the WebSocket are cross-origin, as on a real partner's site.
//!
//! Screenshots go to `<target>/widget-screenshots/`; with FRONTDESK_UPDATE_SCREENSHOT=1 the chat
//! is also copied to docs/widget.png. FRONTDESK_TEST_BROWSER=skip skips the browser tests.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use frontdesk_testkit::browser::{artefact_dir, Browser, ChromeDriver};
use frontdesk_testkit::fake_model::{stream_pieces, FakeModel};
use frontdesk_testkit::relay::Relay;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{header, Backend, Partner, Server, TestDb};

const WIDGET: &str = include_str!("../../../widget/chat-widget.js");
/// Chromium flags every session gets (none: the server answers CORS for the partner's domain).
const BROWSER_FLAGS: &[&str] = &[];
const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

const CUSTOMER: &str = "unique-customer-id";
const FIRST: &str = "Hello, I need help with my order";
const REPLY: &str = "Hi! I'm checking order ORD-12345 for you now.";
const AUTOMATED: &str = "Our opening hours are 9 to 5.";

// ---- size and serving ---------------------------------------------------------------------

#[test]
fn the_widget_fits_its_size_budget() {
    use flate2::write::GzEncoder;
    let mut gzip = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(WIDGET.as_bytes())
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    let gzipped = gzip.finish().unwrap_or_else(|e| panic!("gzip: {e}")).len();
    println!("chat-widget.js: {} bytes, {gzipped} gzipped", WIDGET.len());
    assert!(
        // 32 KiB until streamed automated replies (messageDelta) needed a little more.
        WIDGET.len() <= 33 * 1024,
        "the widget is {} bytes: over its 33 KiB budget",
        WIDGET.len()
    );
    assert!(
        gzipped <= 10 * 1024 + 512,
        "the widget is {gzipped} bytes gzipped: over its 10.5 KiB budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_is_served_with_a_validator_and_gzip() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let url = server.url("/widget/chat-widget.js");

    let plain = send(client.get(&url)).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        header(&plain, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&plain, "cache-control"), "public, max-age=300");
    assert_eq!(header(&plain, "x-content-type-options"), "nosniff");
    assert_eq!(header(&plain, "content-encoding"), "");
    let etag = header(&plain, "etag");
    assert!(etag.starts_with("W/\""), "a weak ETag: {etag:?}");
    assert_eq!(plain.text().await.unwrap_or_default(), WIDGET);

    // Revalidation: the same tag (also in a list, or as a strong tag) is 304 with no body.
    for candidate in [
        etag.clone(),
        format!("\"x\", {etag}"),
        etag.replace("W/", ""),
    ] {
        let again = send(client.get(&url).header("if-none-match", &candidate)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{candidate}");
        assert_eq!(header(&again, "etag"), etag);
        assert_eq!(again.bytes().await.map(|b| b.len()).unwrap_or(1), 0);
    }
    let other = send(client.get(&url).header("if-none-match", "W/\"other\"")).await;
    assert_eq!(other.status(), StatusCode::OK);

    // Gzip when asked for, decoding to the same file.
    let gzipped = send(client.get(&url).header("accept-encoding", "gzip")).await;
    assert_eq!(gzipped.status(), StatusCode::OK);
    assert_eq!(header(&gzipped, "content-encoding"), "gzip");
    let body = gzipped.bytes().await.unwrap_or_default();
    assert!(
        body.len() < WIDGET.len() / 2,
        "{} bytes gzipped",
        body.len()
    );
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut decoded)
        .unwrap_or_else(|e| panic!("not gzip: {e}"));
    assert_eq!(decoded, WIDGET);

    // The demo page: the widget under a strict CSP, no secret in it, gzip too.
    let redirect = send(client.get(server.url("/demo"))).await;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&redirect, "location"), "/demo/");
    for path in ["/demo/", "/demo/demo.js"] {
        let page = send(
            client
                .get(server.url(path))
                .header("accept-encoding", "gzip"),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&page, "content-encoding"), "gzip", "{path}");
        let csp = header(&page, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("style-src 'self'"), "{path}: {csp}");
    }
    let page = send(client.get(server.url("/demo/"))).await;
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains("/widget/chat-widget.js"));
    assert!(!html.contains("fdc_0") && !html.contains("<script>"));

    // The console's assets too.
    for path in ["/console/", "/console/console.js", "/console/console.css"] {
        let asset = send(
            client
                .get(server.url(path))
                .header("accept-encoding", "gzip"),
        )
        .await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&asset, "content-encoding"), "gzip", "{path}");
    }
    let redirect = send(client.get(server.url("/console"))).await;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);

    // The API is not compressed (the middleware is scoped to the assets).
    let health = send(
        client
            .get(server.url("/healthz"))
            .header("accept-encoding", "gzip"),
    )
    .await;
    assert_eq!(header(&health, "content-encoding"), "");
    server.assert_no_panics();
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("request: {e}"))
}

// ---- the guide's snippets on a partner's site ---------------------------------------------

/// The guide's Basic Installation snippet, verbatim but for the server's address and the key.
fn basic_page(server: &str, key: &str) -> String {
    let snippet = r#"<script src="https://your-domain.com/widget/chat-widget.js"></script>
<script>
  document.addEventListener('DOMContentLoaded', function() {
    ChatWidget.init({
      apiKey: 'your-api-key',
      customerId: 'unique-customer-id'  // Optional - will generate one if not provided
    });
  });
</script>"#;
    page(
        &snippet
            .replace("https://your-domain.com", server)
            .replace("your-api-key", key),
    )
}

/// The guide's Widget Customization snippet, verbatim but for the addresses and the key, run as
/// the page loads (in `<head>`, before there is a `<body>`).
fn customized_page(server: &str, key: &str) -> String {
    let snippet = r#"<script src="https://your-domain.com/widget/chat-widget.js"></script>
<script>
ChatWidget.init({
  apiKey: 'your-api-key',
  customerId: 'unique-customer-id',
  baseUrl: 'https://your-custom-url.com', // Optional - defaults to window.location.origin
  theme: {
    primaryColor: '#3a7bd5',
    headerText: 'Customer Support',
    welcomeMessage: 'Hello! How can we help you today?'
  }
});
</script>"#;
    page(
        &snippet
            .replace("https://your-domain.com", server)
            .replace("https://your-custom-url.com", server)
            .replace("your-api-key", key),
    )
}

fn page(head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Acme Shop</title>\
         {head}</head><body><h1>Acme Shop</h1><p>Welcome to our shop.</p></body></html>"
    )
}

on_both_backends!(the_guides_snippets_work_on_a_partners_site);

async fn the_guides_snippets_work_on_a_partners_site(backend: Backend) {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let site = Site::start();
    site.put("/basic.html", &basic_page(&server.base, &partner.key));
    site.put("/custom.html", &customized_page(&server.base, &partner.key));
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let shots = artefact_dir("widget-screenshots");

    // Basic Installation: the launcher appears, and nothing else is fetched until it is opened.
    page.goto(&site.url("/basic.html")).await;
    page.wait_visible(".launcher").await;
    page.wait_attr(".launcher", "aria-expanded", "false").await;
    assert_eq!(
        page.api_requests().await,
        json!([]),
        "requests before opening"
    );
    page.save_screenshot(&shots.join("closed.png")).await;

    page.click(".launcher").await;
    page.wait_visible(".panel").await;
    page.wait_text("h2", "Support").await;
    page.wait_text(".welcome", "Hi! How can we help?").await;
    assert_eq!(
        page.focused().await,
        "TEXTAREA",
        "focus moves into the chat"
    );

    // The customer writes: one conversation, one stored message with a clientMessageId.
    page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
        .await;
    page.wait_script(
        "the message stored and ticked",
        "li.me[data-id] .tick",
        "return node.dataset.state;",
        json!("sent"),
    )
    .await;
    let conversations = list_conversations(&server, &partner, CUSTOMER).await;
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    let conversation = conversations[0]["id"].as_i64().unwrap_or_default();
    let history = server.history(&partner, conversation).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["content"], FIRST);
    assert_eq!(history[0]["senderId"], CUSTOMER);
    let cid = history[0]["clientMessageId"].as_str().unwrap_or_default();
    assert!(
        cid.starts_with("w-"),
        "sent with a clientMessageId: {cid:?}"
    );

    // An agent takes it and replies over REST; an automated message looks different.
    server.assign(&agent, conversation).await;
    let reply = server.agent_reply(&agent, conversation, REPLY).await;
    let reply_node = format!("li.agent[data-id='{}']", reply["id"]);
    page.wait_text(&format!("{reply_node} .content"), REPLY)
        .await;
    page.wait_text(&format!("{reply_node} .who"), "Agent").await;
    let automated = agent_message(&server, &agent, conversation, AUTOMATED, true).await;
    let automated_node = format!("li.bot[data-id='{}']", automated["id"]);
    page.wait_text(&format!("{automated_node} .content"), AUTOMATED)
        .await;
    page.wait_text(&format!("{automated_node} .who"), "Automated reply")
        .await;

    // The agent reads: the customer's message gets its read tick.
    server
        .mark_read(&agent, conversation, &history[0]["id"])
        .await;
    page.wait_script(
        "the read tick",
        "li.me[data-id] .tick",
        "return node.dataset.state;",
        json!("read"),
    )
    .await;
    page.save_screenshot(&shots.join("chatting-basic.png"))
        .await;

    // Escape closes and gives focus back to the launcher.
    page.press(Key::Escape).await;
    page.wait_hidden(".panel").await;
    page.wait_attr(".launcher", "aria-expanded", "false").await;
    assert_eq!(page.focused().await, "BUTTON");

    // While closed, a new reply shows an unread badge.
    let later = server
        .agent_reply(&agent, conversation, "Anything else?")
        .await;
    page.wait_text(".badge", "1").await;

    // A reload: the conversation and its history come back, in order, without duplicates.
    page.goto(&site.url("/basic.html")).await;
    page.click(".launcher").await;
    page.wait_contents(&[FIRST, REPLY, AUTOMATED, "Anything else?"])
        .await;
    assert_eq!(
        page.count(&format!("li[data-id='{}']", later["id"])).await,
        1
    );

    // Customization: the theme's colour, header and welcome text, same conversation.
    page.goto(&site.url("/custom.html")).await;
    page.wait_visible(".launcher").await;
    page.wait_script(
        "the theme colour on the launcher",
        ".launcher",
        "return getComputedStyle(node).backgroundColor;",
        json!("rgb(58, 123, 213)"),
    )
    .await;
    page.click(".launcher").await;
    page.wait_text("h2", "Customer Support").await;
    page.wait_text(".welcome", "Hello! How can we help you today?")
        .await;
    page.wait_contents(&[FIRST, REPLY, AUTOMATED, "Anything else?"])
        .await;
    page.save_screenshot(&shots.join("customized.png")).await;

    // Still exactly one conversation and one copy of the customer's message.
    assert_eq!(
        list_conversations(&server, &partner, CUSTOMER).await.len(),
        1
    );
    let history = server.history(&partner, conversation).await;
    assert_eq!(history.len(), 4, "{history:?}");

    // The agent closes it: the next message opens a new conversation, stored there once.
    server.close(&agent, conversation).await;
    page.type_into(
        "textarea",
        &format!("A new question{}", char::from(Key::Enter)),
    )
    .await;
    // (The "closed" note shows only until the new conversation exists.)
    page.wait_contents(&["A new question"]).await;
    let conversations = list_conversations(&server, &partner, CUSTOMER).await;
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    let second = conversations[1]["id"].as_i64().unwrap_or_default();
    let history = server.history(&partner, second).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["content"], "A new question");
    assert_eq!(server.history(&partner, conversation).await.len(), 4);
    page.quit().await;
    server.assert_no_panics();
}

/// The server answers the `frontdesk.v1` subprotocol, so the widget's WebSocket opens (set to
/// false, the test checks the polling fallback throughout instead).
const SERVER_SPEAKS_SUBPROTOCOL: bool = true;
/// After an outage the widget retries with backoff (at most 30 s, with jitter).
const RECONNECT_WAIT: Duration = Duration::from_secs(45);
const TOKEN_CUSTOMER: &str = "ann-1042";
const OFFLINE_ONE: &str = "Are you still there?";
const OFFLINE_TWO: &str = "My order number is ORD-12345.";
const OFFLINE_REPLY: &str = "Sorry, I was away for a moment. Checking now.";
const POLLED: &str = "Is the socket gone?";
const POLLED_REPLY: &str = "Polling still gets you my answer.";

/// Records every WebSocket the page opens (URL and subprotocols), before the widget loads.
const SPY_JS: &str = "window.__sockets = [];\
     const Native = window.WebSocket;\
     window.WebSocket = function (url, protocols) {\
       window.__sockets.push({url: String(url), protocols: protocols || null});\
       return new Native(url, protocols);\
     };\
     window.WebSocket.prototype = Native.prototype;\
     Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});";

/// The token flow under a strict CSP (no inline script, no inline style): a chat, typing, an
/// outage during which the customer writes twice and the agent once, then the WebSocket blocked
/// for good. Each message is stored once and everything shows, in order.
async fn a_token_session_survives_an_outage(backend: Backend) {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let token = server.session(&partner, TOKEN_CUSTOMER).await;
    // The browser reaches Frontdesk through a relay the test can cut.
    let relay = Relay::start(&server);
    let frontdesk = format!("http://{}", relay.addr);
    let site = Site::start();
    site.put("/spy.js", SPY_JS);
    site.put(
        "/chat.js",
        &format!(
            "ChatWidget.init({{ token: '{token}', customerId: '{TOKEN_CUSTOMER}', \
             theme: {{ headerText: 'Acme help' }} }});"
        ),
    );
    let csp = format!(
        "default-src 'none'; script-src 'self' {frontdesk}; connect-src {frontdesk} \
         ws://{}; style-src 'self'; img-src 'self'",
        relay.addr
    );
    site.put(
        "/chat.html",
        &page(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
             <script src=\"/spy.js\"></script>\
             <script src=\"{frontdesk}/widget/chat-widget.js\"></script>\
             <script src=\"/chat.js\"></script>"
        )),
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let shots = artefact_dir("widget-screenshots");
    let connected = if SERVER_SPEAKS_SUBPROTOCOL {
        "live"
    } else {
        "polling"
    };

    page.goto(&site.url("/chat.html")).await;
    page.click(".launcher").await;
    page.wait_text("h2", "Acme help").await;
    page.wait_attr(".fd", "data-conn", connected).await;
    page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
        .await;
    page.wait_script(
        "the message stored",
        "li.me[data-id] .tick",
        "return node.dataset.state;",
        json!("sent"),
    )
    .await;
    let conversations = list_conversations(&server, &partner, TOKEN_CUSTOMER).await;
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    let conversation = conversations[0]["id"].as_i64().unwrap_or_default();
    server.assign(&agent, conversation).await;
    server.agent_reply(&agent, conversation, REPLY).await;
    page.wait_contents(&[FIRST, REPLY]).await;

    if SERVER_SPEAKS_SUBPROTOCOL {
        // Typing, both ways, over the socket.
        let mut agent_socket = support::WsClient::agent(&server, &agent).await;
        agent_socket
            .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
            .await;
        page.wait_visible(".typing").await;
        page.type_into("textarea", "I").await;
        let mut heard = false;
        while let Some(frame) = agent_socket.next_within(WAIT).await {
            if frame["type"] == "typing" && frame["payload"]["isAgent"] == false {
                assert_eq!(frame["payload"]["isTyping"], true);
                heard = true;
                break;
            }
        }
        assert!(heard, "the agent never saw the customer typing");
        page.clear("textarea").await;

        // Read receipts both ways: the open widget marked the agent's reply read (a `read`
        // frame); the agent reads the customer's message and its tick turns to read, live.
        let deadline = Instant::now() + WAIT;
        let history = loop {
            let history = server.history(&partner, conversation).await;
            if history[1]["readStatus"] == true {
                break history;
            }
            assert!(
                Instant::now() < deadline,
                "the reply was never read: {history:?}"
            );
            tokio::time::sleep(POLL).await;
        };
        server
            .mark_read(&agent, conversation, &history[0]["id"])
            .await;
        page.wait_script(
            "the read tick",
            "li.me[data-id] .tick",
            "return node.dataset.state;",
            json!("read"),
        )
        .await;
    }
    page.save_screenshot(&shots.join("chatting.png")).await;
    if std::env::var("FRONTDESK_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/widget.png");
        page.save_screenshot(&docs).await;
    }

    // The outage: two messages typed offline wait in localStorage, the agent answers meanwhile.
    relay.cut();
    page.wait_attr(".fd", "data-conn", "offline").await;
    for text in [OFFLINE_ONE, OFFLINE_TWO] {
        page.type_into("textarea", &format!("{text}{}", char::from(Key::Enter)))
            .await;
    }
    page.wait_contents(&[
        FIRST,
        REPLY,
        &format!("PENDING {OFFLINE_ONE}"),
        &format!("PENDING {OFFLINE_TWO}"),
    ])
    .await;
    let outbox = page
        .run(
            "return Object.keys(localStorage).filter((k) => k.startsWith('frontdesk.widget:'))\
                 .map((k) => JSON.parse(localStorage.getItem(k)).outbox.map((m) => m.content));",
            Vec::new(),
        )
        .await;
    assert_eq!(outbox, json!([[OFFLINE_ONE, OFFLINE_TWO]]));
    server
        .agent_reply(&agent, conversation, OFFLINE_REPLY)
        .await;
    page.save_screenshot(&shots.join("offline.png")).await;

    relay.restore();
    page.wait_contents_within(
        RECONNECT_WAIT,
        &[FIRST, REPLY, OFFLINE_REPLY, OFFLINE_ONE, OFFLINE_TWO],
    )
    .await;
    page.wait_attr(".fd", "data-conn", connected).await;

    // The WebSocket blocked for good: polling still delivers both ways.
    relay.cut_websockets();
    page.type_into("textarea", &format!("{POLLED}{}", char::from(Key::Enter)))
        .await;
    page.wait_contents_within(
        RECONNECT_WAIT,
        &[
            FIRST,
            REPLY,
            OFFLINE_REPLY,
            OFFLINE_ONE,
            OFFLINE_TWO,
            POLLED,
        ],
    )
    .await;
    page.wait_attr(".fd", "data-conn", "polling").await;
    server.agent_reply(&agent, conversation, POLLED_REPLY).await;
    page.wait_contents(&[
        FIRST,
        REPLY,
        OFFLINE_REPLY,
        OFFLINE_ONE,
        OFFLINE_TWO,
        POLLED,
        POLLED_REPLY,
    ])
    .await;

    // Stored exactly once each, in that order.
    let history: Vec<Value> = server
        .history(&partner, conversation)
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        history,
        json!([
            FIRST,
            REPLY,
            OFFLINE_REPLY,
            OFFLINE_ONE,
            OFFLINE_TWO,
            POLLED,
            POLLED_REPLY
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    // The token never travelled in a URL: not in a request, not in a WebSocket's address.
    let urls = page
        .run(
            "return performance.getEntriesByType('resource').map((e) => e.name)\
                 .concat(window.__sockets.map((s) => s.url));",
            Vec::new(),
        )
        .await;
    assert!(!urls.to_string().contains(&token), "{urls}");
    let sockets = page.run("return window.__sockets;", Vec::new()).await;
    let first = &sockets[0];
    assert_eq!(
        first["protocols"],
        json!(["frontdesk.v1", format!("bearer.{token}")]),
        "{sockets}"
    );

    // A page on another site (127.0.0.1, not the partner's localhost) holding the same token:
    // CORS refuses its requests and the handshake its socket.
    relay.restore(); // WebSockets pass again: only the Origin check may refuse this one
    site.put("/stranger.html", &blank_page(""));
    page.goto(&site.url_on("127.0.0.1", "/stranger.html")).await;
    let refused = page
        .run_async(
            "const [base, ws, token, done] = arguments;\
             const fetched = fetch(base + '/api/partner/conversations/ann-1042',\
               { headers: { Authorization: 'Bearer ' + token } })\
               .then((r) => 'answered ' + r.status, () => 'refused');\
             const socket = new Promise((resolve) => {\
               const s = new WebSocket(ws + '/ws?clientId=ann-1042', ['frontdesk.v1', 'bearer.' + token]);\
               s.onopen = () => resolve('open'); s.onclose = () => resolve('refused'); });\
             Promise.all([fetched, socket]).then(done);",
            vec![
                json!(frontdesk),
                json!(format!("ws://{}", relay.addr)),
                json!(token),
            ],
        )
        .await;
    assert_eq!(refused, json!(["refused", "refused"]));
    page.quit().await;
    server.assert_no_panics();
}

on_both_backends!(a_token_session_survives_an_outage);

/// A host stylesheet that unsets or hides everything changes nothing in the widget; on a narrow
/// screen the open chat fills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_styles_cannot_reach_the_widget() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let site = Site::start();
    let widget = format!(
        "<script src=\"{}/widget/chat-widget.js\"></script><script src=\"/init.js\"></script>",
        server.base
    );
    site.put(
        "/init.js",
        &format!("ChatWidget.init({{ apiKey: '{}' }});", partner.key),
    );
    site.put("/plain.html", &blank_page(&widget));
    site.put(
        "/hostile.html",
        &blank_page(&format!(
            "<link rel=\"stylesheet\" href=\"/hostile.css\">{widget}"
        )),
    );
    site.put(
        "/hostile.css",
        "* { all: unset !important } div, button, iframe { display: none !important }\
         frontdesk-chat-widget { display: none !important; opacity: 0.1 !important; \
         transform: scale(0.5) !important }",
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let shots = artefact_dir("widget-screenshots");

    let mut pictures = Vec::new();
    for name in ["plain", "hostile"] {
        page.goto(&site.url(&format!("/{name}.html"))).await;
        page.click(".launcher").await;
        page.wait_visible(".welcome").await;
        // No caret and no focus ring: only the styles may differ.
        page.run(
            "document.querySelector('frontdesk-chat-widget').shadowRoot.activeElement.blur();\
             return null;",
            Vec::new(),
        )
        .await;
        let png = page.screenshot().await;
        std::fs::write(shots.join(format!("{name}.png")), &png)
            .unwrap_or_else(|e| panic!("{name}.png: {e}"));
        pictures.push(png);
    }
    assert!(
        pictures[0] == pictures[1],
        "the hostile stylesheet changed the widget: compare {} and {}",
        shots.join("plain.png").display(),
        shots.join("hostile.png").display()
    );

    // Narrow screen: the panel fills the viewport.
    page.resize(390, 700).await;
    page.wait_script(
        "the panel to fill the screen",
        ".panel",
        "const r = node.getBoundingClientRect();\
         return [r.left, r.top, r.width, r.height].map(Math.round)\
             .join() === [0, 0, innerWidth, innerHeight].join();",
        json!(true),
    )
    .await;
    page.save_screenshot(&shots.join("narrow.png")).await;
    page.quit().await;
    server.assert_no_panics();
}

/// Two tabs, one socket: the tab holding the lock connects; the other hears and sends through
/// it, opening none; when the first tab closes, the second takes the socket over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_share_one_socket() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let token = server.session(&partner, TOKEN_CUSTOMER).await;
    let site = Site::start();
    site.put("/spy.js", SPY_JS);
    site.put(
        "/chat.js",
        &format!("ChatWidget.init({{ token: '{token}', customerId: '{TOKEN_CUSTOMER}' }});"),
    );
    site.put(
        "/chat.html",
        &page(&format!(
            "<script src=\"/spy.js\"></script>\
             <script src=\"{}/widget/chat-widget.js\"></script>\
             <script src=\"/chat.js\"></script>",
            server.base
        )),
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let sockets = "return window.__sockets.length;";

    page.goto(&site.url("/chat.html")).await;
    page.click(".launcher").await;
    page.wait_attr(".fd", "data-conn", "live").await;
    page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
        .await;
    page.wait_contents(&[FIRST]).await;
    let conversation = list_conversations(&server, &partner, TOKEN_CUSTOMER).await[0]["id"]
        .as_i64()
        .unwrap_or_default();

    let first_tab = page
        .client
        .window()
        .await
        .unwrap_or_else(|e| panic!("window: {e}"));
    let second_tab = page
        .client
        .new_window(true)
        .await
        .unwrap_or_else(|e| panic!("new tab: {e}"))
        .handle;
    page.client
        .switch_to_window(second_tab)
        .await
        .unwrap_or_else(|e| panic!("switch: {e}"));
    page.goto(&site.url("/chat.html")).await;
    page.click(".launcher").await;
    page.wait_attr(".fd", "data-conn", "live").await;
    page.wait_contents(&[FIRST]).await;

    // The agent's reply and typing reach the second tab through the first tab's socket.
    server.assign(&agent, conversation).await;
    let mut agent_socket = support::WsClient::agent(&server, &agent).await;
    server.agent_reply(&agent, conversation, REPLY).await;
    page.wait_contents(&[FIRST, REPLY]).await;
    agent_socket
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    page.wait_visible(".typing").await;
    // And its typing goes out through it.
    page.type_into("textarea", "I").await;
    let mut heard = false;
    while let Some(frame) = agent_socket.next_within(WAIT).await {
        if frame["type"] == "typing" && frame["payload"]["isAgent"] == false {
            heard = true;
            break;
        }
    }
    assert!(heard, "the agent never saw the second tab typing");
    assert_eq!(
        page.run(sockets, Vec::new()).await,
        json!(0),
        "the second tab opened a socket"
    );

    // The first tab closes: the second connects on its own and still hears the agent.
    page.client
        .switch_to_window(first_tab)
        .await
        .unwrap_or_else(|e| panic!("switch: {e}"));
    assert_eq!(page.run(sockets, Vec::new()).await, json!(1));
    page.client
        .close_window()
        .await
        .unwrap_or_else(|e| panic!("close tab: {e}"));
    let second_tab = page
        .client
        .windows()
        .await
        .unwrap_or_else(|e| panic!("windows: {e}"))
        .pop()
        .unwrap_or_else(|| panic!("no tab left"));
    page.client
        .switch_to_window(second_tab)
        .await
        .unwrap_or_else(|e| panic!("switch: {e}"));
    let deadline = Instant::now() + RECONNECT_WAIT;
    while page.run(sockets, Vec::new()).await != json!(1) {
        assert!(
            Instant::now() < deadline,
            "the second tab never took the socket over"
        );
        tokio::time::sleep(POLL).await;
    }
    page.wait_attr(".fd", "data-conn", "live").await;
    server
        .agent_reply(&agent, conversation, "Still here.")
        .await;
    page.wait_contents(&[FIRST, REPLY, "Still here."]).await;
    page.quit().await;
    server.assert_no_panics();
}

const DRAFT_HEAD: &str = "Your order ";
const DRAFT_TAIL: &str = "ships today.";
const SECOND: &str = "And can I change the address?";

/// An automated reply as the model writes it (slowly: a pause between its two pieces): the
/// draft shows the first piece before the rest is written, then the stored reply replaces it,
/// one bubble. Then an agent takes the conversation while the model writes the next reply:
/// that draft goes, and no automated message follows.
async fn an_automated_reply_shows_as_it_is_written(backend: Backend) {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(|_req: &Value| {
        stream_pieces(&[
            (Duration::ZERO, DRAFT_HEAD),
            (Duration::from_millis(1500), DRAFT_TAIL),
        ])
    })
    .await;
    let server = Server::start_with(&db, &model.server_env()).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let token = server.session(&partner, TOKEN_CUSTOMER).await;
    let site = Site::start();
    site.put(
        "/chat.js",
        &format!("ChatWidget.init({{ token: '{token}', customerId: '{TOKEN_CUSTOMER}' }});"),
    );
    site.put(
        "/chat.html",
        &page(&format!(
            "<script src=\"{}/widget/chat-widget.js\"></script>\
             <script src=\"/chat.js\"></script>",
            server.base
        )),
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let draft = "li.bot[aria-busy='true']";
    let bot_bubbles = "li.bot[data-id]";
    let full = format!("{DRAFT_HEAD}{DRAFT_TAIL}");

    page.goto(&site.url("/chat.html")).await;
    page.click(".launcher").await;
    page.wait_attr(".fd", "data-conn", "live").await;
    page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
        .await;
    // The first piece alone: the rest is not written yet, and nothing is stored.
    page.wait_script(
        "the draft's first piece",
        draft,
        "return [node.querySelector('.who').textContent, node.querySelector('.content').textContent];",
        json!(["Automated reply", DRAFT_HEAD]),
    )
    .await;
    assert_eq!(
        page.count(bot_bubbles).await,
        0,
        "stored before it was written"
    );
    page.save_screenshot(&artefact_dir("widget-screenshots").join("draft.png"))
        .await;
    // Then the whole reply, once, in place of the draft.
    page.wait_contents(&[FIRST, &full]).await;
    assert_eq!(
        page.count(draft).await,
        0,
        "the draft stayed beside its reply"
    );
    assert_eq!(page.count(bot_bubbles).await, 1);
    page.wait_script(
        "the reply labelled as automated",
        bot_bubbles,
        "return node.querySelector('.who').textContent;",
        json!("Automated reply"),
    )
    .await;

    // The next reply is being written when an agent takes the conversation: its draft goes.
    page.type_into("textarea", &format!("{SECOND}{}", char::from(Key::Enter)))
        .await;
    page.wait_script(
        "the second draft",
        draft,
        "return node.querySelector('.content').textContent;",
        json!(DRAFT_HEAD),
    )
    .await;
    let conversation = list_conversations(&server, &partner, TOKEN_CUSTOMER).await[0]["id"]
        .as_i64()
        .unwrap_or_default();
    server.assign(&agent, conversation).await;
    page.wait_script(
        "the abandoned draft to go",
        ".log",
        "return node.querySelectorAll(\"li[aria-busy]\").length;",
        json!(0),
    )
    .await;
    // The model's second piece has come and gone by now: nothing was stored from it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    page.wait_contents(&[FIRST, &full, SECOND]).await;
    let history: Vec<Value> = server
        .history(&partner, conversation)
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(history, vec![json!(FIRST), json!(full), json!(SECOND)]);
    page.quit().await;
    server.assert_no_panics();
}

on_both_backends!(an_automated_reply_shows_as_it_is_written);

/// A session token that lasts 3 s, renewed through `getToken` (which asks the partner's site, as
/// the token flow in docs/widget.md does): the chat goes on across several expiries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_renewed_through_get_token() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("FRONTDESK_CUSTOMER_SESSION_SECS", "3")]).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let site = Arc::new(Site::start());
    // The partner's server: a fresh token at /token.json every half second.
    let minting = {
        let site = Arc::clone(&site);
        let url = server.url("/api/partner/sessions");
        let key = partner.key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let minted = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"customerId": TOKEN_CUSTOMER}))
                    .send()
                    .await;
                if let Ok(response) = minted {
                    if let Ok(body) = response.text().await {
                        site.put("/token.json", &body);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    site.put(
        "/chat.js",
        &format!(
            "window.__tokens = 0;\
             ChatWidget.init({{ customerId: '{TOKEN_CUSTOMER}', getToken: function () {{\
               window.__tokens++;\
               return fetch('/token.json', {{ cache: 'no-store' }}).then((r) => r.json()); }} }});"
        ),
    );
    site.put(
        "/chat.html",
        &page(&format!(
            "<script src=\"{}/widget/chat-widget.js\"></script><script src=\"/chat.js\"></script>",
            server.base
        )),
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let deadline = Instant::now() + WAIT;
    while !site.has("/token.json") {
        assert!(Instant::now() < deadline, "no token minted");
        tokio::time::sleep(POLL).await;
    }

    page.goto(&site.url("/chat.html")).await;
    page.click(".launcher").await;
    page.wait_attr(".fd", "data-conn", "live").await;
    page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
        .await;
    page.wait_contents(&[FIRST]).await;
    let conversation = list_conversations(&server, &partner, TOKEN_CUSTOMER).await[0]["id"]
        .as_i64()
        .unwrap_or_default();
    server.assign(&agent, conversation).await;

    // Several lifetimes later, both directions still work, on a live socket.
    tokio::time::sleep(Duration::from_secs(8)).await;
    server.agent_reply(&agent, conversation, REPLY).await;
    page.wait_contents_within(RECONNECT_WAIT, &[FIRST, REPLY])
        .await;
    page.type_into(
        "textarea",
        &format!("{OFFLINE_ONE}{}", char::from(Key::Enter)),
    )
    .await;
    page.wait_contents_within(RECONNECT_WAIT, &[FIRST, REPLY, OFFLINE_ONE])
        .await;
    page.wait_attr(".fd", "data-conn", "live").await;
    let renewals = page.run("return window.__tokens;", Vec::new()).await;
    assert!(
        renewals.as_u64().unwrap_or_default() >= 3,
        "getToken was called {renewals} times in 8 s of 3-second tokens"
    );
    minting.abort();
    let history = server.history(&partner, conversation).await;
    assert_eq!(history.len(), 3, "{history:?}");
    page.quit().await;
    server.assert_no_panics();
}

/// Records console errors and the widget's events, then starts it with a few wrong options.
const API_INIT_JS: &str = "window.__errors = []; window.__events = [];\
     const error = console.error; console.error = function () {\
       window.__errors.push(Array.from(arguments).join(' ')); error.apply(console, arguments); };\
     ['open', 'close', 'message', 'unread'].forEach((name) =>\
       ChatWidget.on(name, () => window.__events.push(name)));\
     ChatWidget.init({ apiKey: 'KEY', customerId: 'kim-7', colour: 'red',\
       theme: { primaryColor: 5, headerText: 'Keys' }, strings: { send: 'Go', nope: 'x' } });";

/// Wrong options are reported, not fatal; the keyboard alone opens, sends and closes; the
/// events fire; setUser reaches the customer; destroy leaves nothing; dark mode follows the
/// system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_api_the_keyboard_and_dark_mode() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let site = Site::start();
    site.put("/init.js", &API_INIT_JS.replace("KEY", &partner.key));
    site.put(
        "/api.html",
        &blank_page(&format!(
            "<script src=\"{}/widget/chat-widget.js\"></script><script src=\"/init.js\"></script>",
            server.base
        )),
    );
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;

    page.goto(&site.url("/api.html")).await;
    page.wait_visible(".launcher").await;
    let errors = page.run("return window.__errors;", Vec::new()).await;
    let errors: Vec<&str> = errors
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(errors.len(), 3, "{errors:?}");
    for (error, mentions) in errors.iter().zip(["colour", "theme.primaryColor", "nope"]) {
        assert!(
            error.starts_with("[ChatWidget] ") && error.contains(mentions),
            "{error}"
        );
    }
    // The rest of the options still apply.
    page.wait_script(
        "the header",
        "h2",
        "return node.textContent;",
        json!("Keys"),
    )
    .await;
    page.wait_script(
        "the send label",
        ".send",
        "return node.textContent;",
        json!("Go"),
    )
    .await;

    // Keyboard only: Tab reaches the launcher, Enter opens, Enter sends, Escape closes.
    page.press(Key::Tab).await;
    assert_eq!(page.focused().await, "BUTTON");
    page.press(Key::Enter).await;
    page.wait_visible(".panel").await;
    assert_eq!(page.focused().await, "TEXTAREA");
    for key in "Hello from the keyboard".chars() {
        page.press_char(key).await;
    }
    page.press(Key::Enter).await;
    page.wait_contents(&["Hello from the keyboard"]).await;
    page.press(Key::Escape).await;
    page.wait_hidden(".panel").await;
    assert_eq!(page.focused().await, "BUTTON");
    let events = page.run("return window.__events;", Vec::new()).await;
    assert_eq!(
        events,
        json!(["open", "close"]),
        "own messages sent here are not 'message' events"
    );

    // An agent's reply while closed: 'message' and 'unread'.
    let conversation = list_conversations(&server, &partner, "kim-7").await[0]["id"]
        .as_i64()
        .unwrap_or_default();
    server.assign(&agent, conversation).await;
    server.agent_reply(&agent, conversation, "Hello Kim").await;
    page.wait_text(".badge", "1").await;
    let events = page.run("return window.__events;", Vec::new()).await;
    assert_eq!(events, json!(["open", "close", "message", "unread"]));

    // setUser with the API key: the customer's name reaches the agent.
    let stored = page
        .run_async(
            "ChatWidget.setUser({ name: 'Kim Lee' }).then(arguments[0]);",
            Vec::new(),
        )
        .await;
    assert_eq!(stored, json!(true));
    let detail = server
        .client
        .get(server.url(&format!("/api/agent/conversations/{conversation}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("detail: {e}"));
    let detail: Value = detail.json().await.unwrap_or_default();
    assert_eq!(detail["customer"]["name"], "Kim Lee", "{detail}");

    // destroy: nothing left, and the API stays safe to call.
    let left = page
        .run(
            "ChatWidget.destroy(); ChatWidget.open(); ChatWidget.toggle();\
             return document.querySelectorAll('frontdesk-chat-widget').length;",
            Vec::new(),
        )
        .await;
    assert_eq!(left, json!(0));
    page.quit().await;

    // Dark mode: the system's preference, with no option.
    let dark = Page::open_with(&driver, &browser, &["--force-dark-mode"]).await;
    dark.goto(&site.url("/api.html")).await;
    dark.click(".launcher").await;
    dark.wait_script(
        "the dark panel",
        ".panel",
        "return getComputedStyle(node).backgroundColor;",
        json!("rgb(29, 32, 38)"),
    )
    .await;
    dark.save_screenshot(&artefact_dir("widget-screenshots").join("dark.png"))
        .await;
    dark.quit().await;
    server.assert_no_panics();
}

/// `/demo/` on a fresh server: a token in the URL fragment starts a chat; the page forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_chats_with_a_token_from_its_fragment() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "127.0.0.1").await;
    let token = server.session(&partner, "demo-customer").await;
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open_with(&driver, &browser, &[]).await;

    page.goto(&server.url(&format!("/demo/#token={token}&customerId=demo-customer")))
        .await;
    page.wait_visible(".panel").await;
    let address = page.run("return location.href;", Vec::new()).await;
    assert_eq!(address, json!(server.url("/demo/")));
    page.type_into(
        "textarea",
        &format!("Hello from the demo{}", char::from(Key::Enter)),
    )
    .await;
    page.wait_contents(&["Hello from the demo"]).await;
    let conversations = list_conversations(&server, &partner, "demo-customer").await;
    assert_eq!(conversations.len(), 1);
    page.quit().await;
    server.assert_no_panics();
}

/// Under `style-src 'nonce-…'` the `nonce` option puts the styles in a `<style nonce>` the
/// policy allows; without it the constructable stylesheet is used, which CSP does not block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_is_styled_under_a_nonce_policy() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let site = Site::start();
    for (name, nonce) in [("nonce", ", nonce: 'r4nd0m'"), ("sheet", "")] {
        site.put(
            &format!("/{name}.js"),
            &format!("ChatWidget.init({{ apiKey: '{}'{nonce} }});", partner.key),
        );
        site.put(
            &format!("/{name}.html"),
            &blank_page(&format!(
                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
                 script-src 'self' {base}; connect-src {base}; style-src 'nonce-r4nd0m'\">\
                 <script src=\"{base}/widget/chat-widget.js\"></script>\
                 <script src=\"/{name}.js\"></script>",
                base = server.base
            )),
        );
    }
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    for (name, styles) in [("nonce", "style"), ("sheet", "adopted")] {
        page.goto(&site.url(&format!("/{name}.html"))).await;
        page.wait_script(
            &format!("the launcher styled ({name})"),
            ".launcher",
            "return getComputedStyle(node).backgroundColor;",
            json!("rgb(31, 111, 235)"),
        )
        .await;
        let how = page
            .run(
                "const root = document.querySelector('frontdesk-chat-widget').shadowRoot;\
                 return root.querySelector('style') ? 'style'\
                     : root.adoptedStyleSheets.length ? 'adopted' : 'none';",
                Vec::new(),
            )
            .await;
        assert_eq!(how, json!(styles), "{name}");
    }
    page.quit().await;
    server.assert_no_panics();
}

/// A page with nothing visible of its own (no title either: `all: unset` would show it), so
/// screenshots show only the widget.
fn blank_page(head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         {head}</head><body></body></html>"
    )
}

/// Registers a partner whose domain is `domain` (the browser tests' partner site).
async fn register(server: &Server, domain: &str) -> Partner {
    let response = server
        .client
        .post(server.url("/api/partner/register"))
        .json(&json!({"name": "Acme Shop", "domain": domain}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap_or_default();
    wait_for_cors(server, domain).await;
    Partner {
        id: body["partnerId"].as_str().unwrap_or_default().to_owned(),
        key: body["apiKey"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Waits until a preflight from a page on `domain` is answered. A partner registered on this
/// instance should be at once; but the server's first refresh of its domain list, running at
/// start, can overwrite the new entry with the list it read before the registration committed,
/// and preflights are then refused until the next refresh (30 s). Reported to the server's owner
/// (issue 15); until that is fixed this keeps the browser tests from depending on the race.
async fn wait_for_cors(server: &Server, domain: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let preflight = server
            .client
            .request(
                reqwest::Method::OPTIONS,
                server.url("/api/partner/messages"),
            )
            .header("origin", format!("http://{domain}:1"))
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("preflight: {e}"));
        if preflight
            .headers()
            .contains_key("access-control-allow-origin")
        {
            return;
        }
        eprintln!("a preflight from {domain} was refused just after its registration");
        assert!(
            Instant::now() < deadline,
            "preflights from {domain} are still refused"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn list_conversations(server: &Server, partner: &Partner, customer: &str) -> Vec<Value> {
    let response = server
        .client
        .get(server.url(&format!("/api/partner/conversations/{customer}")))
        .bearer_auth(&partner.key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("conversations: {e}"));
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap_or_default()
}

/// An agent's message with metadata (the automated-reply marker when `automated`).
async fn agent_message(
    server: &Server,
    agent: &support::Agent,
    conversation: i64,
    content: &str,
    automated: bool,
) -> Value {
    let response = server
        .client
        .post(server.url(&format!("/api/agent/conversations/{conversation}/messages")))
        .bearer_auth(&agent.token)
        .json(&json!({"content": content, "metadata": {"automated": automated}}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("agent message: {e}"));
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap_or_default()
}

// ---- the partner's site --------------------------------------------------------------------

/// A second origin: a few fixed pages on `http://localhost:<port>`, one request per connection.
struct Site {
    port: u16,
    pages: Arc<Mutex<HashMap<String, String>>>,
}

impl Site {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("site: {e}"));
        let port = listener
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_else(|e| panic!("site: {e}"));
        let pages: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let shared = Arc::clone(&pages);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let pages = Arc::clone(&shared);
                std::thread::spawn(move || serve_one(stream, &pages));
            }
        });
        Self { port, pages }
    }

    fn put(&self, path: &str, html: &str) {
        if let Ok(mut pages) = self.pages.lock() {
            pages.insert(path.to_owned(), html.to_owned());
        }
    }

    fn url(&self, path: &str) -> String {
        self.url_on("localhost", path)
    }

    fn has(&self, path: &str) -> bool {
        self.pages
            .lock()
            .is_ok_and(|pages| pages.contains_key(path))
    }

    /// The same server under another host name: another origin, another site.
    fn url_on(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

fn serve_one(mut stream: TcpStream, pages: &Mutex<HashMap<String, String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let page = pages.lock().ok().and_then(|pages| pages.get(path).cloned());
    let content_type = if path.ends_with(".js") {
        "text/javascript"
    } else if path.ends_with(".css") {
        "text/css"
    } else {
        "text/html; charset=utf-8"
    };
    let (status, body) = match page {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

// ---- the browser, looking into the widget's shadow root -----------------------------------

struct Page {
    client: Client,
    _profile: tempfile::TempDir,
}

/// Finds `arguments[0]` inside the widget's shadow root as `node` (null when absent).
const IN_WIDGET: &str = "const host = document.querySelector('frontdesk-chat-widget');\
     const node = host && host.shadowRoot ? host.shadowRoot.querySelector(arguments[0]) : null;";

impl Page {
    async fn open(driver: &ChromeDriver, browser: &Browser) -> Self {
        Self::open_with(driver, browser, &[]).await
    }

    /// A session with more Chromium flags (besides BROWSER_FLAGS).
    async fn open_with(driver: &ChromeDriver, browser: &Browser, flags: &[&str]) -> Self {
        let all: Vec<&str> = BROWSER_FLAGS.iter().chain(flags).copied().collect();
        let (client, profile) = driver.session_with(browser, &all).await;
        Self {
            client,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Runs an async script; it calls `arguments[0]` (after the given arguments) with its result.
    async fn run_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Polls `body` (run with `node`, the first match of `selector` in the widget) until it
    /// returns `expected`; a missing node reads as null.
    async fn wait_script(&self, what: &str, selector: &str, body: &str, expected: Value) {
        self.wait_script_within(WAIT, what, selector, body, expected)
            .await;
    }

    async fn wait_script_within(
        &self,
        patience: Duration,
        what: &str,
        selector: &str,
        body: &str,
        expected: Value,
    ) {
        let script = format!("{IN_WIDGET} if (!node) return null; {body}");
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.run(&script, vec![json!(selector)]).await;
            if seen == expected {
                return;
            }
            if Instant::now() >= deadline {
                let shot = artefact_dir("widget-screenshots").join("failure.png");
                self.save_screenshot(&shot).await;
                // What the page fetched, for the diagnosis (status 0: refused, e.g. by CORS, or a
                // cross-origin answer without Timing-Allow-Origin, such as the script).
                let fetched = self
                    .run(
                        "return performance.getEntriesByType('resource')\
                             .map((e) => e.name + ' ' + (e.responseStatus || 0));",
                        Vec::new(),
                    )
                    .await;
                panic!(
                    "waited {patience:?} for {what} ({selector}); saw {seen}, not {expected}\n\
                     screenshot: {}\nrequests: {fetched}",
                    shot.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_visible(&self, selector: &str) {
        self.wait_script(
            "it to be visible",
            selector,
            "return node.checkVisibility();",
            json!(true),
        )
        .await;
    }

    async fn wait_hidden(&self, selector: &str) {
        self.wait_script(
            "it to be hidden",
            selector,
            "return node.checkVisibility();",
            json!(false),
        )
        .await;
    }

    async fn wait_text(&self, selector: &str, text: &str) {
        self.wait_script(
            &format!("the text {text:?}"),
            selector,
            "return node.checkVisibility() ? node.textContent : null;",
            json!(text),
        )
        .await;
    }

    async fn wait_attr(&self, selector: &str, attribute: &str, value: &str) {
        let body = format!("return node.getAttribute({attribute:?});");
        self.wait_script(
            &format!("{attribute}={value:?}"),
            selector,
            &body,
            json!(value),
        )
        .await;
    }

    /// Waits until the chat shows exactly these messages (stored ones), top to bottom, and
    /// nothing pending.
    async fn wait_contents(&self, contents: &[&str]) {
        self.wait_contents_within(WAIT, contents).await;
    }

    async fn wait_contents_within(&self, patience: Duration, contents: &[&str]) {
        self.wait_script_within(
            patience,
            "the history in order",
            ".log",
            "return Array.from(node.querySelectorAll('li[data-id], li[data-cid]'))\
                 .map((li) => (li.dataset.id ? '' : 'PENDING ') + li.querySelector('.content').textContent);",
            json!(contents),
        )
        .await;
    }

    async fn count(&self, selector: &str) -> usize {
        let script = "const host = document.querySelector('frontdesk-chat-widget');\
             return host.shadowRoot.querySelectorAll(arguments[0]).length;";
        let seen = self.run(script, vec![json!(selector)]).await;
        usize::try_from(seen.as_u64().unwrap_or_default()).unwrap_or_default()
    }

    /// The tag of the focused element inside the widget.
    async fn focused(&self) -> String {
        let script = "const host = document.querySelector('frontdesk-chat-widget');\
             const active = host.shadowRoot.activeElement;\
             return document.activeElement === host && active ? active.tagName : null;";
        self.run(script, Vec::new())
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every request the page made to Frontdesk's API or WebSocket so far.
    async fn api_requests(&self) -> Value {
        self.run(
            "return performance.getEntriesByType('resource').map((e) => e.name)\
                 .filter((name) => name.includes('/api/') || name.includes('/ws'));",
            Vec::new(),
        )
        .await
    }

    async fn element(&self, selector: &str) -> Element {
        let host = self
            .client
            .find(Locator::Css("frontdesk-chat-widget"))
            .await
            .unwrap_or_else(|e| panic!("no widget on the page: {e}"));
        let root = host
            .shadow_root()
            .await
            .unwrap_or_else(|e| panic!("no shadow root: {e}"));
        root.find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
    }

    /// Clicks like a user: a real pointer click on the visible element.
    async fn click(&self, selector: &str) {
        self.wait_visible(selector).await;
        self.element(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Types key by key into the element, so the widget gets real key and input events.
    async fn type_into(&self, selector: &str, text: &str) {
        self.wait_visible(selector).await;
        self.element(selector)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    }

    /// A key pressed and released, to whatever has the focus (a real keyboard event).
    async fn press(&self, key: Key) {
        self.press_char(char::from(key)).await;
    }

    async fn press_char(&self, value: char) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("key {value:?}: {e}"));
    }

    async fn clear(&self, selector: &str) {
        self.element(selector)
            .await
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {selector}: {e}"));
    }

    /// Sets the viewport (not the window) to exactly width x height.
    async fn resize(&self, width: u32, height: u32) {
        let inner = self
            .run(
                "return [outerWidth - innerWidth, outerHeight - innerHeight];",
                Vec::new(),
            )
            .await;
        let extra = |i: usize| u32::try_from(inner[i].as_i64().unwrap_or(0)).unwrap_or(0);
        self.client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .unwrap_or_else(|e| panic!("resize to {width}x{height}: {e}"));
    }

    async fn screenshot(&self) -> Vec<u8> {
        self.client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"))
    }

    async fn save_screenshot(&self, path: &Path) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    async fn quit(self) {
        let _ = self.client.close().await;
    }
}

// ---- accessibility ------------------------------------------------------------------------

/// axe-core (npm, `widget/node_modules`; `.ci/run` installs it), run in the page on the open
/// widget in light and dark, finds no serious or critical violation. axe looks into the open
/// Shadow DOM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_serious_violation_in_the_open_widget() {
    let Some(browser) = Browser::locate("widget") else {
        return;
    };
    let axe_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../widget/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; install it with `npm ci --prefix widget` (.ci/run does)",
            axe_path.display()
        )
    });
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = register(&server, "localhost").await;
    let agent = server.agent("agent@example.com", false).await;
    let site = Site::start();
    site.put("/axe.js", &axe);
    site.put("/custom.html", &customized_page(&server.base, &partner.key));
    let driver = ChromeDriver::start(&browser).await;
    for dark in [false, true] {
        let flags: &[&str] = if dark {
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ]
        } else {
            &[]
        };
        let page = Page::open_with(&driver, &browser, flags).await;
        page.goto(&site.url("/custom.html")).await;
        page.click(".launcher").await;
        page.wait_visible(".panel").await;
        page.type_into("textarea", &format!("{FIRST}{}", char::from(Key::Enter)))
            .await;
        page.wait_script(
            "the message stored",
            "li.me[data-id] .tick",
            "return node.dataset.state;",
            json!("sent"),
        )
        .await;
        if !dark {
            // An agent's reply in the log too, so both kinds of message are checked.
            let conversations = list_conversations(&server, &partner, "unique-customer-id").await;
            let conversation = conversations[0]["id"].as_i64().unwrap_or_default();
            server.assign(&agent, conversation).await;
            server.agent_reply(&agent, conversation, REPLY).await;
            page.wait_contents(&[FIRST, REPLY]).await;
        }
        let serious = page
            .run_async(
                "const done = arguments[arguments.length - 1];
                 const script = document.createElement('script');
                 script.src = '/axe.js';
                 script.onload = () => axe.run(document, { resultTypes: ['violations'] })
                   .then(result => done(result.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ': ' + v.help + ' at ' +
                       v.nodes.map(n => JSON.stringify(n.target)).join(', '))))
                   .catch(error => done(['axe failed: ' + error]));
                 script.onerror = () => done(['axe did not load']);
                 document.head.appendChild(script);",
                Vec::new(),
            )
            .await;
        assert_eq!(serious, json!([]), "dark: {dark}");
        page.quit().await;
    }
}
