use super::*;

fn depth(text: &str) -> usize {
    deepest_flow(text, usize::MAX).unwrap()
}

fn nested(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

#[test]
fn counts_flow_levels_like_libyaml() {
    assert_eq!(depth(""), 0);
    assert_eq!(depth("a: b\nc:\n  - d\n"), 0);
    assert_eq!(depth("a: [1, [2, {b: c}]]\n"), 3);
    assert_eq!(depth("- - [a, [b]]\n"), 2);
    assert_eq!(depth("a: &x [1, *x]\n"), 1);
    assert_eq!(depth("--- [1]\n...\n--- [[2]]\n"), 2);
    // A plain scalar in flow context ends at a flow indicator.
    assert_eq!(depth("[a[b]]"), 2);
    assert_eq!(depth("{a: [b, {c: [d]}]}"), 4);
}

#[test]
fn brackets_inside_scalars_and_comments_do_not_count() {
    for text in [
        "a: '[[[['\n",
        "a: \"[[[\\\"[[\"\n",
        "a: 'it''s [['\n",
        "a: b # [[[[\n# [[[\n",
        "a: x[[[y\n",
        "expression: ^\\[(?P<x>[^\\]]+)\n",
        "a: !<tag:[[[> x\n",
        "a: |\n  [[[[\n  {{ .x }\nb: c\n",
        "a: >-\n  [[\n\n  [[\nb: c\n",
        "a: |2\n   [[[\n",
        "a: 'unterminated [[[\n",
        "a: x\n  [[[\n",
    ] {
        assert_eq!(depth(text), 0, "{text:?}");
    }
    assert_eq!(depth("a: [1, # [[[\n 2]\n"), 1);
    assert_eq!(depth("[\"a\n [[[\", [1]]"), 2);
    assert_eq!(depth("a: !!str [1]\n"), 1);
    // A shorthand tag ends at a `,` in flow context; the `[` after it opens a level.
    assert_eq!(depth("[!a,[!a,[x]]]"), 3);
}

#[test]
fn follows_where_scalars_end() {
    // A plain scalar continues on more indented lines, so a quote there is plain text; the
    // next line at column 0 ends it and its brackets open flow levels.
    assert_eq!(depth("a: x\n 'y\n[[[[\n"), 4);
    // A block scalar ends at the first less indented line.
    assert_eq!(depth("a: |\n  x\n[[[\n"), 3);
    assert_eq!(depth("- |\n  [[\n- [[1]]\n"), 2);
    assert_eq!(depth("a:\n  b: |\n    [[\n  c: [[1]]\n"), 2);
    // A comment ends at a Unicode line break too.
    assert_eq!(depth("# c\u{85}[[1]]"), 2);
}

#[test]
fn refuses_deep_nesting_that_serde_yaml_refuses_anyway() {
    assert!(check_flow_depth(&nested(MAX_FLOW_DEPTH)).is_ok());
    let too_deep = nested(MAX_FLOW_DEPTH + 1);
    let e = check_flow_depth(&too_deep).unwrap_err();
    assert_eq!(
        e.to_string(),
        "flow collections ([...] or {...}) nested more than 128 deep at line 1 column 129"
    );
    assert!(TooDeep::MESSAGE.contains(&MAX_FLOW_DEPTH.to_string()));
    let e = serde_yaml::from_str::<serde_yaml::Value>(&too_deep).unwrap_err();
    assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
    // The shapes that make libyaml quadratic, unterminated as a fuzzer would leave them.
    assert!(check_flow_depth(&"[".repeat(100_000)).is_err());
    assert!(check_flow_depth(&"{\"\":[".repeat(10_000)).is_err());
    assert!(check_flow_depth(&format!("a: {}", "[\n".repeat(1000))).is_err());
}

#[test]
fn the_example_configs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(depth(&text) <= 2, "{}", path.display());
        }
    }
}
