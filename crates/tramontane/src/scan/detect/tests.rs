use secrecy::ExposeSecret;

use super::*;

/// A key of Mistral's shape, different for every seed and the same on every run. Keys are
/// made at run time so no source file holds a literal that looks like one.
fn mistral_key(seed: u64) -> String {
    random_base62(seed, MISTRAL_KEY_LEN)
}

fn gateway_key(seed: u64) -> String {
    format!(
        "tmt_{}_{}",
        random_base62(seed ^ 0xabcdef, 12),
        random_base62(seed, 43)
    )
}

fn random_base62(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    loop {
        let text: String = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(ALPHABET[(state % 62) as usize])
            })
            .collect();
        if looks_random(text.as_bytes()) && text.bytes().any(|b| b.is_ascii_digit()) {
            return text;
        }
    }
}

fn found(path: &str, text: &str) -> Vec<(Rule, u32, u32, String)> {
    find_secrets(path, text, FileContext::default())
        .into_iter()
        .map(|m| {
            (
                m.rule,
                m.line,
                m.column,
                m.secret.expose_secret().to_owned(),
            )
        })
        .collect()
}

/// Where `needle` is in `text`: 1-based line and character column.
fn position(text: &str, needle: &str) -> (u32, u32) {
    for (index, line) in text.split('\n').enumerate() {
        if let Some(byte) = line.find(needle) {
            return (index as u32 + 1, line[..byte].chars().count() as u32 + 1);
        }
    }
    panic!("`{needle}` is not in the text");
}

/// The ten ways a Mistral key is written down, as (file name, text with `{key}`).
pub(crate) const FORMATS: [(&str, &str); 10] = [
    ("settings.env", "DEBUG=1\nMISTRAL_API_KEY={key}\n"),
    (
        "config.yaml",
        "server:\n  port: 8080\nmistral:\n  model: mistral-large-latest\n  api_key: {key}\n",
    ),
    (
        "config.json",
        "{\n  \"mistral\": {\n    \"apiKey\": \"{key}\",\n    \"model\": \"mistral-small-latest\"\n  }\n}\n",
    ),
    (
        "config.toml",
        "[mistral]\nmodel = \"codestral-latest\"\napi_key = \"{key}\"\n",
    ),
    (
        "chat.py",
        "from mistralai import Mistral\n\nclient = Mistral(api_key=\"{key}\")\n",
    ),
    (
        "chat.js",
        "import { Mistral } from \"@mistralai/mistralai\";\n\nconst client = new Mistral({ apiKey: \"{key}\" });\n",
    ),
    (
        "models.sh",
        "curl https://api.mistral.ai/v1/models \\\n  -H \"Authorization: Bearer {key}\"\n",
    ),
    (
        "profile.sh",
        "export PATH=$HOME/bin:$PATH\nexport MISTRAL_API_KEY=\"{key}\"\n",
    ),
    (
        "main.rs",
        "const MISTRAL_API_KEY: &str = \"{key}\";\n\nfn main() {}\n",
    ),
    (
        "main.go",
        "package main\n\nfunc main() {\n\tclient := mistral.NewMistralClientDefault(\"{key}\")\n\t_ = client\n}\n",
    ),
];

#[test]
fn every_format_of_a_mistral_key_is_found_where_it_is() {
    for (seed, (name, template)) in FORMATS.iter().enumerate() {
        let key = mistral_key(seed as u64);
        let text = template.replace("{key}", &key);
        let (line, column) = position(&text, &key);
        assert_eq!(
            found(name, &text),
            vec![(Rule::MistralApiKey, line, column, key.clone())],
            "{name}:\n{text}"
        );
    }
}

#[test]
fn more_sdk_constructors_and_names() {
    let key = mistral_key(99);
    for line in [
        "client = MistralClient(api_key='{key}')",
        "client = MistralClient('{key}')",
        "async_client = MistralAsyncClient(api_key=\"{key}\")",
        "const client = new MistralClient(\"{key}\");",
        "\"mistral_key\": \"{key}\"",
        "mistralApiKey: '{key}'",
        "os.environ[\"MISTRAL_API_KEY\"] = \"{key}\"",
        "std::env::set_var(\"MISTRAL_API_KEY\", \"{key}\");",
        "MISTRAL_API_KEY: {key}",
        "mistral-api-key={key}",
        "curl -H 'Authorization: Bearer {key}' https://api.mistral.ai/v1/chat/completions",
        "x-api-key: {key}  # mistral",
    ] {
        let text = line.replace("{key}", &key);
        let matches = found("app.txt", &text);
        assert_eq!(matches.len(), 1, "{text}");
        assert_eq!(matches[0].3, key, "{text}");
    }
}

#[test]
fn a_generic_field_counts_only_near_mistral() {
    let key = mistral_key(7);
    let lone = format!("api_key: {key}\n");
    assert!(found("service.yaml", &lone).is_empty());
    // …but it does in a file named for Mistral, or with Mistral a few lines off.
    assert_eq!(found("config/mistral.yaml", &lone).len(), 1);
    let near = format!("mistral:\n  a: 1\n  b: 2\n  c: 3\n  d: 4\n  api_key: {key}\n");
    assert_eq!(found("service.yaml", &near).len(), 1);
    let far = format!(
        "mistral:\n{}  api_key: {key}\n",
        "  x: 1\n".repeat(CONTEXT_LINES)
    );
    assert!(found("service.yaml", &far).is_empty());
}

#[test]
fn a_name_after_the_key_is_no_context() {
    let key = mistral_key(8);
    assert!(found("notes.txt", &format!("{key} is not the MISTRAL_API_KEY\n")).is_empty());
}

#[test]
fn a_secret_sink_needs_no_context() {
    let key = mistral_key(9);
    let sink = FileContext {
        is_secret_sink: true,
    };
    let matches = find_secrets("secrets/dev/ci.key", &format!("{key}\n"), sink);
    assert_eq!(matches.len(), 1);
    assert!(
        find_secrets(
            "secrets/dev/ci.key",
            &format!("{key}\n"),
            FileContext::default()
        )
        .is_empty()
    );
}

#[test]
fn a_key_inside_a_longer_token_is_not_one() {
    let key = mistral_key(10);
    for text in [
        format!("MISTRAL_API_KEY=x{key}"),
        format!("MISTRAL_API_KEY={key}x"),
        format!("MISTRAL_API_KEY=_{key}"),
        format!("MISTRAL_API_KEY={key}_v2"),
        format!("MISTRAL_API_KEY=abc+{key}"),
        format!("MISTRAL_API_KEY=abc/{key}"),
        format!("MISTRAL_API_KEY={key}=="),
        format!("MISTRAL_API_KEY={key}-1"),
    ] {
        assert!(found("a.env", &text).is_empty(), "{text}");
    }
}

#[test]
fn shapes_that_are_not_random_keys_are_refused() {
    let key = |body: &str| format!("MISTRAL_API_KEY={body}");
    // One case only: hex digests, placeholders.
    assert!(found("a.env", &key(&"0123456789abcdef".repeat(2))).is_empty());
    assert!(found("a.env", &key(&"0123456789ABCDEF".repeat(2))).is_empty());
    // Too few distinct characters.
    assert!(found("a.env", &key(&"aB1".repeat(11)[..32])).is_empty());
    // A camelCase word with no digit.
    assert!(found("a.env", &key("ThisIsTheMistralKeyPlaceholderAB")).is_empty());
    // A digit-free key that is not a word is still a key.
    let digitless = "QwErTyUiOpAsDfGhJkLzXcVbNmQaWsEd";
    assert_eq!(found("a.env", &key(digitless)).len(), 1);
}

#[test]
fn several_keys_on_one_line_and_columns_in_characters() {
    let (first, second) = (mistral_key(11), mistral_key(12));
    let text = format!("é MISTRAL_KEY={first} MISTRAL_KEY_2={second}");
    let matches = found("a.env", &text);
    assert_eq!(matches.len(), 2);
    assert_eq!((matches[0].1, matches[0].2), (1, 15));
    assert_eq!(matches[1].3, second);
}

#[test]
fn gateway_keys_are_matched_by_their_format_anywhere() {
    let key = gateway_key(1);
    for text in [
        key.clone(),
        format!("TRAMONTANE_KEY={key}"),
        format!("{{\"key\": \"{key}\"}}"),
        format!("curl -H 'Authorization: Bearer {key}' http://gateway:8080/v1/models"),
    ] {
        let matches = found("notes.txt", &text);
        assert_eq!(matches.len(), 1, "{text}");
        assert_eq!(matches[0].0, Rule::GatewayKey);
        assert_eq!(matches[0].3, key);
    }
    let longest = format!(
        "tmt_{}_{}",
        random_base62(3, *gateway_format::PUBLIC_ID_LEN.end()),
        random_base62(4, *gateway_format::SECRET_LEN.end())
    );
    assert_eq!(found("x", &longest).len(), 1);
    let chosen_id = format!("tmt_ci-deploy_{}", random_base62(6, 43));
    assert_eq!(found("x", &chosen_id).len(), 1);
    for bad_id in ["-cideploy", "cideploy-", "abc", &"a".repeat(41)] {
        let key = format!("tmt_{bad_id}_{}", random_base62(6, 43));
        assert!(found("x", &key).is_empty(), "{bad_id}");
    }
    let hex_secret = format!("tmt_k1a2b3c4_{}", "0123456789abcdef".repeat(4));
    assert_eq!(found("x", &hex_secret).len(), 1);
    let too_long = format!(
        "tmt_abcd_{}",
        random_base62(5, *gateway_format::SECRET_LEN.end() + 1)
    );
    assert!(found("x", &too_long).is_empty());
}

#[test]
fn the_false_positive_corpus_yields_nothing() {
    let corpus: [(&str, &str); 10] = [
        (
            "package-lock.json",
            include_str!("false_positives/package-lock.json"),
        ),
        ("yarn.lock", include_str!("false_positives/yarn.lock")),
        (
            "pnpm-lock.yaml",
            include_str!("false_positives/pnpm-lock.yaml"),
        ),
        ("Cargo.lock", include_str!("false_positives/Cargo.lock")),
        ("go.sum", include_str!("false_positives/go.sum")),
        (
            "requirements.txt",
            include_str!("false_positives/requirements.txt"),
        ),
        ("hashes.txt", include_str!("false_positives/hashes.txt")),
        (
            "identifiers.env.txt",
            include_str!("false_positives/identifiers.env.txt"),
        ),
        (
            "mistral_placeholders.env.txt",
            include_str!("false_positives/mistral_placeholders.env.txt"),
        ),
        (
            "gateway_lookalikes.txt",
            include_str!("false_positives/gateway_lookalikes.txt"),
        ),
    ];
    for (name, text) in corpus {
        assert_eq!(found(name, text), vec![], "{name}");
    }
    // Placeholders of a key's exact length, built here so that no key-shaped line is
    // committed for other scanners to flag.
    let filled = format!(
        "MISTRAL_API_KEY={}\nMISTRAL_API_KEY={}\n",
        "x".repeat(32),
        "X".repeat(32)
    );
    assert_eq!(
        found(".env", &filled),
        vec![],
        "placeholders of a key's length"
    );
}

#[test]
fn generated_look_alikes_without_mistral_context_yield_nothing() {
    // Random 32-character identifiers under every secret-ish name but Mistral's, and
    // hex, UUID and base64 strings under Mistral's names.
    let mut text = String::new();
    for seed in 0..200 {
        let id = mistral_key(1000 + seed);
        text.push_str(&format!(
            "SESSION_TOKEN={id}\napi_key: {id}\nAuthorization: Bearer {id}\n"
        ));
    }
    assert_eq!(found("service/config.txt", &text), vec![]);
}

#[test]
fn binary_is_told_by_an_early_nul() {
    assert!(is_binary(b"PK\x03\x04\x00\x00"));
    assert!(!is_binary(b"MISTRAL_API_KEY=x\n"));
    let mut late = vec![b'a'; 9000];
    late.push(0);
    assert!(!is_binary(&late));
}

#[test]
fn long_and_hostile_lines_are_read_in_one_pass() {
    let line = "tmt_".repeat(200_000) + &"a".repeat(100_000);
    assert!(found("x", &line).is_empty());
}

/// A fork's pull request can hold a crafted file: one line of megabytes, a key-shaped
/// candidate every 33 bytes and secret-field names between them, must be read in time
/// linear in its length. Run on a thread so a regression fails here instead of hanging.
#[test]
fn a_multi_megabyte_line_of_candidates_is_read_in_linear_time() {
    let mut line = String::from("token = [");
    let mut seed = 0;
    while line.len() < 4 << 20 {
        line.push_str(&mistral_key(seed));
        line.push_str(if seed % 7 == 0 { " key " } else { " " });
        seed += 1;
    }
    line.push(']');
    let key = mistral_key(u64::MAX);
    // Mistral is mentioned further away than CONTEXT_LINES: the generic names do not count.
    let text = format!(
        "{line}{}const MISTRAL_API_KEY: &str = \"{key}\";\n",
        "\n".repeat(7)
    );
    let (line_number, column) = position(&text, &key);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let found = found("src/x.rs", &text);
        let _ = sender.send((found, started.elapsed()));
    });
    // A slow debug build on a busy machine reads it in well under a second; the quadratic
    // reading took minutes.
    let (found, elapsed) = receiver
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a 4 MB line took more than 20 s: scanning is not linear");
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(found, vec![(Rule::MistralApiKey, line_number, column, key)]);
}
