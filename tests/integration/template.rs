//! The SAM template (`infra/template.yaml`) against the route table, the
//! workspace and the configuration: they must not drift apart. The HTTP API
//! serves `ROUTES`, the WebSocket API (live events) `SOCKET_ROUTES`, and each
//! of `WORKERS` consumes a queue or the table's stream.
//!
//! The template is read with a YAML parser that keeps CloudFormation's short
//! tags (`!Ref`, `!Sub`, `!GetAtt`, `!If` …); they are turned into their long
//! JSON form (`{"Ref": …}`, `{"Fn::Sub": …}`) so the checks below see one
//! shape. Where a check needs a value (environment variables, outputs, rules),
//! a small evaluator resolves parameters, conditions and intrinsics the way
//! CloudFormation would, with placeholders for resource ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use switchboard::config::{Backend, Config, KeySource};
use switchboard::routes::{self, Handler, ROUTES, SOCKET_ROUTES};
use switchboard_aws::dynamodb::CHANGES_INDEX;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TEMPLATE: &str = "infra/template.yaml";

const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
const SERVERLESS_HTTP_API: &str = "AWS::Serverless::HttpApi";
const API_GATEWAY_V2_API: &str = "AWS::ApiGatewayV2::Api";
const SOCKET_ROUTE: &str = "AWS::ApiGatewayV2::Route";
/// The WebSocket API's one stage: `wss://<api>.execute-api.<region>.amazonaws.com/live`.
const SOCKET_STAGE: &str = "live";
/// What Lambda's event source mapping reads a DynamoDB stream with (the
/// function's role must allow them; no adapter calls them).
const STREAM_READ: [&str; 4] = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];
const HTTP_METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

// ---------------------------------------------------------------------------
// Reading the template

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The template, short-form tags expanded to their long form.
fn template() -> &'static Value {
    static TEMPLATE_JSON: OnceLock<Value> = OnceLock::new();
    TEMPLATE_JSON.get_or_init(|| {
        let yaml: serde_norway::Value =
            serde_norway::from_str(&read(TEMPLATE)).unwrap_or_else(|e| panic!("{TEMPLATE} is not YAML: {e}"));
        to_json(yaml)
    })
}

fn to_json(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    other => panic!("{TEMPLATE}: a mapping key that is not a string: {other:?}"),
                };
                map.insert(key, to_json(value));
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            match name {
                "Ref" | "Condition" => json!({ name: value }),
                // `!GetAtt Resource.Attribute` is a string; the long form is a pair.
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (resource, attribute) = s
                            .split_once('.')
                            .unwrap_or_else(|| panic!("{TEMPLATE}: !GetAtt {s} names no attribute"));
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                _ => json!({ format!("Fn::{name}"): value }),
            }
        }
    }
}

fn resources() -> &'static Map<String, Value> {
    template()["Resources"].as_object().expect("Resources")
}

fn resources_of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn resource(id: &str) -> &'static Value {
    resources()
        .get(id)
        .unwrap_or_else(|| panic!("{TEMPLATE}: no resource {id}"))
}

/// A function's property, or the one `Globals.Function` gives it.
fn function_property<'a>(function: &'a Value, name: &str) -> Option<&'a Value> {
    function["Properties"]
        .get(name)
        .or_else(|| template()["Globals"]["Function"].get(name))
}

/// `{"Ref": id}` or `{"Fn::GetAtt": [id, …]}` → `id`.
fn referenced_resource(value: &Value) -> Option<&str> {
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return Some(id);
    }
    value.get("Fn::GetAtt").and_then(|v| v[0].as_str())
}

/// Every resource a value refers to: `Ref`, `Fn::GetAtt` and `${…}` in `Fn::Sub`.
fn references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match key.as_str() {
                    "Ref" => {
                        if let Some(id) = inner.as_str() {
                            out.insert(id.to_owned());
                        }
                    }
                    "Fn::GetAtt" => {
                        if let Some(id) = inner[0].as_str() {
                            out.insert(id.to_owned());
                        }
                    }
                    "Fn::Sub" => {
                        let (text, vars) = match inner {
                            Value::String(s) => (s.as_str(), None),
                            Value::Array(pair) => (pair[0].as_str().unwrap_or_default(), pair.get(1)),
                            _ => ("", None),
                        };
                        for name in sub_placeholders(text) {
                            let local = vars.and_then(|v| v.get(name.as_str())).is_some();
                            if !local {
                                out.insert(name.split('.').next().unwrap_or_default().to_owned());
                            }
                        }
                        if let Some(vars) = vars {
                            references(vars, out);
                        }
                    }
                    _ => references(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// The `${name}` placeholders of a `Fn::Sub` string (not the `${!literal}` escapes).
fn sub_placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            names.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    names
}

// ---------------------------------------------------------------------------
// Evaluating parameters, conditions and intrinsics

const REGION: &str = "eu-west-1";
const STACK: &str = "switchboard";

struct Eval {
    parameters: HashMap<String, String>,
}

impl Eval {
    /// Parameter defaults, with `overrides` as an operator would pass them.
    fn with(overrides: &[(&str, &str)]) -> Self {
        let mut parameters = HashMap::new();
        for (name, parameter) in template()["Parameters"].as_object().expect("Parameters") {
            let default = match &parameter["Default"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            parameters.insert(name.clone(), default);
        }
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "{TEMPLATE}: no parameter {name}");
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        Self { parameters }
    }

    /// The placeholder a resource's `Ref` resolves to: a valid host label.
    fn resource_ref(id: &str) -> String {
        format!("{}-ref", id.to_ascii_lowercase())
    }

    fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::NoValue" => None,
            "AWS::Region" => Some(REGION.into()),
            "AWS::StackName" => Some(STACK.into()),
            "AWS::AccountId" => Some("123456789012".into()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ => {
                if let Some(value) = self.parameters.get(name) {
                    Some(value.clone())
                } else {
                    assert!(resources().contains_key(name), "{TEMPLATE}: Ref to unknown {name}");
                    Some(Self::resource_ref(name))
                }
            }
        }
    }

    fn get_att(resource_id: &str, attribute: &str) -> String {
        assert!(
            resources().contains_key(resource_id),
            "{TEMPLATE}: GetAtt of unknown {resource_id}"
        );
        format!(
            "arn:aws:test:{REGION}:123456789012:{}/{attribute}",
            resource_id.to_ascii_lowercase()
        )
    }

    fn condition(&self, name: &str) -> bool {
        let condition = template()["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("{TEMPLATE}: no condition {name}"));
        self.truth(condition)
    }

    /// A condition function (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`).
    fn truth(&self, value: &Value) -> bool {
        let map = value.as_object().unwrap_or_else(|| panic!("not a condition: {value}"));
        let (function, args) = map.iter().next().unwrap_or_else(|| panic!("empty condition"));
        match function.as_str() {
            "Condition" => self.condition(args.as_str().expect("condition name")),
            "Fn::Equals" => self.eval(&args[0]) == self.eval(&args[1]),
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::And" => args.as_array().expect("Fn::And list").iter().all(|c| self.truth(c)),
            "Fn::Or" => args.as_array().expect("Fn::Or list").iter().any(|c| self.truth(c)),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// A value as CloudFormation would resolve it; `None` for `AWS::NoValue`.
    fn eval(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Object(map) if map.len() == 1 => {
                let (function, args) = map.iter().next().unwrap();
                match function.as_str() {
                    "Ref" => self.reference(args.as_str().expect("Ref name")),
                    "Fn::GetAtt" => Some(Self::get_att(
                        args[0].as_str().expect("GetAtt resource"),
                        args[1].as_str().expect("GetAtt attribute"),
                    )),
                    "Fn::If" => {
                        let branch = if self.condition(args[0].as_str().expect("If condition")) {
                            1
                        } else {
                            2
                        };
                        self.eval(&args[branch])
                    }
                    "Fn::Sub" => Some(self.sub(args)),
                    "Fn::Join" => {
                        let separator = args[0].as_str().expect("Join separator");
                        let parts: Vec<String> = args[1]
                            .as_array()
                            .expect("Join list")
                            .iter()
                            .filter_map(|p| self.eval(p))
                            .collect();
                        Some(parts.join(separator))
                    }
                    other => panic!("{TEMPLATE}: the test cannot evaluate {other} in {value}"),
                }
            }
            other => panic!("{TEMPLATE}: not a scalar value: {other}"),
        }
    }

    fn sub(&self, args: &Value) -> String {
        let (text, vars) = match args {
            Value::String(s) => (s.as_str(), None),
            Value::Array(pair) => (pair[0].as_str().expect("Sub string"), pair.get(1)),
            other => panic!("bad Fn::Sub {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("unclosed ${ in Fn::Sub");
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(local) = vars.and_then(|v| v.get(name)) {
                out.push_str(&self.eval(local).unwrap_or_default());
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&Self::get_att(resource, attribute));
            } else {
                out.push_str(&self.reference(name).unwrap_or_default());
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

// ---------------------------------------------------------------------------
// The functions

struct Function {
    id: &'static str,
    name: String,
    resource: &'static Value,
}

fn functions() -> Vec<Function> {
    resources_of_type(SERVERLESS_FUNCTION)
        .into_iter()
        .map(|(id, resource)| {
            let name = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary names its binary"))
                .to_owned();
            Function { id, name, resource }
        })
        .collect()
}

fn function_folders() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|entry| entry.expect("functions/ entry"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The environment a function starts with: `Globals` merged with its own.
fn environment(function: &Function, eval: &Eval) -> BTreeMap<String, String> {
    let mut merged = Map::new();
    for source in [
        &template()["Globals"]["Function"]["Environment"]["Variables"],
        &function.resource["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(vars) = source.as_object() {
            merged.extend(vars.clone());
        }
    }
    merged
        .iter()
        .filter_map(|(k, v)| eval.eval(v).map(|v| (k.clone(), v)))
        .collect()
}

/// The functions that serve no route (queue and stream consumers).
fn workers() -> BTreeSet<String> {
    routes::WORKERS.iter().map(|(name, _)| (*name).to_owned()).collect()
}

/// The functions of the WebSocket API's routes (`routes::SOCKET_ROUTES`).
fn socket_functions() -> BTreeSet<String> {
    SOCKET_ROUTES.iter().map(|r| r.function.to_owned()).collect()
}

/// Whether a function serves a route of the HTTP API: a row of `ROUTES`
/// that is not a socket (`GET /events` is the local server's socket; in AWS
/// it is the WebSocket API's `$connect`).
fn serves_http(name: &str) -> bool {
    ROUTES.iter().any(|r| r.function == name && !r.handler.is_socket())
}

/// The resources a function's events of type `kind` name in `property`.
fn event_sources(function: &Function, kind: &str, property: &str) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    if let Some(events) = function.resource["Properties"]["Events"].as_object() {
        for event in events.values().filter(|e| e["Type"] == kind) {
            sources.extend(referenced_resource(&event["Properties"][property]).map(str::to_owned));
        }
    }
    sources
}

/// The queues a function consumes (its `SQS` events).
fn queues_consumed(function: &Function) -> BTreeSet<String> {
    event_sources(function, "SQS", "Queue")
}

/// The tables whose DynamoDB stream a function consumes (its `DynamoDB` events).
fn streams_consumed(function: &Function) -> BTreeSet<String> {
    event_sources(function, "DynamoDB", "Stream")
}

/// The functions that post to sockets or close them through the Management
/// API: the `$default` route's (the pong; closing an expired agent's socket)
/// and the stream consumers' (the fan-out).
fn socket_senders() -> BTreeSet<String> {
    let mut senders: BTreeSet<String> = SOCKET_ROUTES
        .iter()
        .filter(|r| r.route_key == "$default")
        .map(|r| r.function.to_owned())
        .collect();
    senders.extend(
        functions()
            .iter()
            .filter(|f| !streams_consumed(f).is_empty())
            .map(|f| f.name.clone()),
    );
    senders
}

/// The WebSocket API (live events): the one `AWS::ApiGatewayV2::Api` whose
/// protocol is `WEBSOCKET`.
fn websocket_api() -> (&'static str, &'static Value) {
    let apis: Vec<_> = resources_of_type(API_GATEWAY_V2_API)
        .into_iter()
        .filter(|(_, api)| api["Properties"]["ProtocolType"] == "WEBSOCKET")
        .collect();
    assert_eq!(apis.len(), 1, "{TEMPLATE}: one WebSocket API");
    apis[0]
}

/// The resources of type `kind` that belong to the API `api_id` (by `ApiId`).
fn of_api(kind: &str, api_id: &str) -> Vec<(&'static str, &'static Value)> {
    resources_of_type(kind)
        .into_iter()
        .filter(|(_, r)| referenced_resource(&r["Properties"]["ApiId"]) == Some(api_id))
        .collect()
}

/// The WebSocket API's one stage.
fn websocket_stage() -> (&'static str, &'static Value) {
    let (api_id, _) = websocket_api();
    let stages = of_api("AWS::ApiGatewayV2::Stage", api_id);
    assert_eq!(stages.len(), 1, "{api_id}: one stage");
    stages[0]
}

/// The WebSocket API's stage URL as deployed: `wss` for browsers, `https`
/// for the Management API that posts to connections.
fn events_stage_url(scheme: &str) -> String {
    let (api_id, _) = websocket_api();
    let (stage_id, _) = websocket_stage();
    format!(
        "{scheme}://{}.execute-api.{REGION}.amazonaws.com/{}",
        Eval::resource_ref(api_id),
        Eval::resource_ref(stage_id)
    )
}

/// The API Gateway form of a route-table path: `{name}` stays, `{*rest}` is `{rest+}`.
fn api_gateway_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix("{*") {
            Some(rest) => format!("{{{}+}}", rest.trim_end_matches('}')),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The function a Lambda integration's URI (a `!Sub`) invokes, by its fixed
/// name: checked to be exactly `integration_uri` of a function of the template.
fn integrated_function<'a>(uri: &'a Value, names: &BTreeSet<String>, what: &str) -> &'a str {
    let uri = uri["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the integration URI is a !Sub"));
    let function = uri
        .split_once(":function:${AWS::StackName}-")
        .and_then(|(_, rest)| rest.strip_suffix("/invocations"))
        .unwrap_or_else(|| panic!("{what}: {uri} names no function"));
    assert_eq!(uri, integration_uri(function), "{what}: integration URI");
    assert!(
        names.contains(function),
        "{what}: {function} is not a function of the template"
    );
    function
}

fn integration_uri(function: &str) -> String {
    format!(
        "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/\
         arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{AWS::StackName}}-{function}/invocations"
    )
}

// ---------------------------------------------------------------------------
// The checks

#[test]
fn every_function_folder_is_a_function_of_the_template_and_of_the_route_table() {
    let folders = function_folders();
    let in_template: BTreeSet<String> = functions().iter().map(|f| f.name.clone()).collect();
    let in_routes: BTreeSet<String> = routes::functions().into_iter().map(str::to_owned).collect();
    assert_eq!(in_template, folders, "functions of {TEMPLATE} vs folders of functions/");
    assert_eq!(
        in_routes, folders,
        "routes::functions() (ROUTES, SOCKET_ROUTES and WORKERS) vs folders of functions/"
    );
    for listed in socket_functions().iter().chain(workers().iter()) {
        assert!(
            in_routes.contains(listed),
            "routes::functions() leaves out {listed} (SOCKET_ROUTES or WORKERS)"
        );
    }
    assert_eq!(functions().len(), folders.len(), "one template function per binary");
}

/// The fast stand-in for a full `sam build`: each binary the template builds
/// is a package of the workspace that serves its own rows of the route table.
#[test]
fn the_template_binaries_exist_in_the_workspace() {
    let workspace = read("Cargo.toml");
    assert!(
        workspace.contains("\"functions/*\""),
        "the root Cargo.toml's workspace includes functions/*"
    );
    for function in functions() {
        let name = &function.name;
        let manifest = read(&format!("functions/{name}/Cargo.toml"));
        assert_eq!(
            package_name(&manifest).as_deref(),
            Some(name.as_str()),
            "functions/{name}/Cargo.toml"
        );
        let main = read(&format!("functions/{name}/src/main.rs"));
        if workers().contains(name) {
            // A queue or stream consumer: its own runner, no route.
            assert!(
                runner(&main).is_some_and(|r| r.starts_with("run_")),
                "functions/{name}/src/main.rs runs a switchboard_lambda runner of its own (run_…)"
            );
            assert!(
                routes::Router::for_function(name).is_err(),
                "worker {name} serves no route"
            );
        } else if socket_functions().contains(name) {
            // A WebSocket route: API Gateway WebSocket events, not HTTP API
            // ones, so a runner of its own, told which route it serves.
            assert!(
                runner(&main).is_some_and(|r| r.starts_with("run_")) && main.contains(&format!("(\"{name}\")")),
                "functions/{name}/src/main.rs runs a switchboard_lambda runner for WebSocket events (run_…(\"{name}\"))"
            );
            assert!(
                !serves_http(name),
                "{name} serves the WebSocket API, so no route of the HTTP API"
            );
        } else {
            assert!(
                main.contains(&format!("switchboard_lambda::run(\"{name}\")")),
                "functions/{name}/src/main.rs runs switchboard_lambda::run(\"{name}\")"
            );
            assert!(
                routes::Router::for_function(name).is_ok(),
                "{name} serves at least one route"
            );
        }
    }
}

/// The `switchboard_lambda` function a `main.rs` runs: `run` in
/// `switchboard_lambda::run("token")`, `run_fan_out` in
/// `switchboard_lambda::live::run_fan_out()`.
fn runner(main: &str) -> Option<&str> {
    main.split("switchboard_lambda::").skip(1).find_map(|rest| {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))?;
        let path = &rest[..end];
        // A call, not a type such as `switchboard_lambda::Error`.
        if rest[end..].starts_with('(') {
            path.rsplit("::").next()
        } else {
            None
        }
    })
}

/// `name` of a manifest's `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

#[test]
fn every_function_is_an_arm64_al2023_cargo_lambda_build_of_the_workspace() {
    for function in functions() {
        let (id, name, r) = (function.id, &function.name, function.resource);
        assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}: BuildMethod");
        assert_eq!(
            function_property(r, "Runtime"),
            Some(&json!("provided.al2023")),
            "{id}: Runtime"
        );
        assert_eq!(
            function_property(r, "Architectures"),
            Some(&json!(["arm64"])),
            "{id}: Architectures"
        );
        assert_eq!(
            function_property(r, "Handler"),
            Some(&json!("bootstrap")),
            "{id}: Handler"
        );
        // CodeUri is relative to infra/: the function's folder, a member of the
        // workspace, where `cargo lambda build --bin <name>` finds its package.
        let code = format!("../functions/{name}");
        assert_eq!(r["Properties"]["CodeUri"], code.as_str(), "{id}: CodeUri");
        assert!(
            root().join("infra").join(&code).join("Cargo.toml").is_file(),
            "{id}: {code}"
        );
        assert_eq!(
            r["Properties"]["FunctionName"],
            json!({"Fn::Sub": format!("${{AWS::StackName}}-{name}")}),
            "{id}: FunctionName (the API's integrations name functions by it)"
        );
        for setting in ["MemorySize", "Timeout"] {
            assert!(
                r["Properties"][setting].is_u64(),
                "{id}: {setting} is chosen per function"
            );
        }
    }
}

#[test]
fn the_http_api_serves_exactly_the_route_table() {
    let apis = resources_of_type(SERVERLESS_HTTP_API);
    assert_eq!(apis.len(), 1, "one HTTP API");
    let (api_id, api) = apis[0];
    let names: BTreeSet<String> = functions().iter().map(|f| f.name.clone()).collect();

    let mut in_template = BTreeSet::new();
    let paths = api["Properties"]["DefinitionBody"]["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("{api_id}: DefinitionBody.paths"));
    for (path, item) in paths {
        let item = item.as_object().expect("path item");
        for (key, value) in item {
            let is_method = HTTP_METHODS.contains(&key.as_str());
            assert!(is_method || key == "parameters", "{path}: unexpected {key}");
            if is_method {
                assert_eq!(
                    value["responses"],
                    json!({}),
                    "{key} {path}: responses (OpenAPI requires them)"
                );
            }
        }
        // Every path parameter is declared, as API Gateway's import expects.
        let declared: BTreeSet<&str> = as_list(item.get("parameters").unwrap_or(&Value::Null))
            .into_iter()
            .filter(|p| p["in"] == "path" && p["required"] == true)
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| name.trim_end_matches('+'))
            .collect();
        assert_eq!(declared, in_path, "{path}: path parameters");
        for (method, operation) in item.iter().filter(|(key, _)| HTTP_METHODS.contains(&key.as_str())) {
            let integration = &operation["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{method} {path}");
            assert_eq!(
                integration["httpMethod"], "POST",
                "{method} {path}: Lambda is invoked with POST"
            );
            assert_eq!(integration["payloadFormatVersion"], "2.0", "{method} {path}");
            let function = integrated_function(&integration["uri"], &names, &format!("{method} {path}"));
            in_template.insert((method.to_ascii_uppercase(), path.clone(), function.to_owned()));
        }
    }

    // Socket routes (`GET /events`, the local server's) are the WebSocket
    // API's `$connect` in AWS, not paths of the HTTP API.
    let in_table: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .filter(|r| !r.handler.is_socket())
        .map(|r| {
            (
                r.method.as_str().to_owned(),
                api_gateway_path(r.path),
                r.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        in_template, in_table,
        "routes of {TEMPLATE} vs the route table (shared/src/routes.rs)"
    );
}

#[test]
fn the_http_api_is_throttled_and_logged() {
    let (api_id, api) = resources_of_type(SERVERLESS_HTTP_API)[0];
    let p = &api["Properties"];
    assert_eq!(
        p["StageName"], "$default",
        "{api_id}: one $default stage, so paths carry no stage prefix"
    );
    for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        let value = Eval::with(&[]).eval(&p["DefaultRouteSettings"][limit]);
        let value: f64 = value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{api_id}: {limit}"));
        assert!(value > 0.0, "{api_id}: {limit}");
    }
    let logs = &p["AccessLogSettings"];
    let destination = referenced_resource(&logs["DestinationArn"]).expect("access logs go to a log group");
    assert_eq!(resource(destination)["Type"], "AWS::Logs::LogGroup");
    assert!(
        resource(destination)["Properties"]["RetentionInDays"].is_object(),
        "access logs expire"
    );
    let format = logs["Format"].as_str().expect("access log format");
    let line: Value = serde_json::from_str(format).unwrap_or_else(|e| panic!("the access log format is JSON: {e}"));
    for field in ["requestId", "lambdaRequestId", "status", "routeKey"] {
        assert!(line.get(field).is_some(), "access logs carry {field}");
    }
    assert!(!format.contains("$context.identity.caller") && !format.to_lowercase().contains("authorization"));
}

/// Live events: the WebSocket API routes `$connect`, `$disconnect` and
/// `$default` to the functions of `SOCKET_ROUTES`, and is deployed.
#[test]
fn the_websocket_api_serves_exactly_the_socket_routes() {
    let (api_id, api) = websocket_api();
    let p = &api["Properties"];
    assert_eq!(
        p["RouteSelectionExpression"], "$request.body.action",
        "{api_id}: clients send {{\"action\": …}}; anything else is $default"
    );
    let name = Eval::with(&[]).eval(&p["Name"]).unwrap_or_default();
    assert!(name.starts_with(STACK), "{api_id}: Name {name:?} names the stack");
    let names: BTreeSet<String> = functions().iter().map(|f| f.name.clone()).collect();

    let routes = of_api(SOCKET_ROUTE, api_id);
    let mut in_template = BTreeSet::new();
    for (route_id, route) in &routes {
        let r = &route["Properties"];
        let key = r["RouteKey"].as_str().unwrap_or_else(|| panic!("{route_id}: RouteKey"));
        // The functions check the agent's token ($connect reads ?token=);
        // API Gateway authorizes nothing itself.
        assert_eq!(r["AuthorizationType"], "NONE", "{route_id}: AuthorizationType");
        let mut targets = BTreeSet::new();
        references(&r["Target"], &mut targets);
        assert_eq!(targets.len(), 1, "{route_id}: Target names one integration");
        let integration_id = targets.into_iter().next().unwrap_or_default();
        assert_eq!(
            Eval::with(&[]).eval(&r["Target"]),
            Some(format!("integrations/{}", Eval::resource_ref(&integration_id))),
            "{route_id}: Target is integrations/<integration id>"
        );
        let integration = resource(&integration_id);
        assert_eq!(
            integration["Type"], "AWS::ApiGatewayV2::Integration",
            "{route_id}: {integration_id}"
        );
        let i = &integration["Properties"];
        assert_eq!(
            referenced_resource(&i["ApiId"]),
            Some(api_id),
            "{integration_id}: ApiId"
        );
        assert_eq!(i["IntegrationType"], "AWS_PROXY", "{integration_id}");
        assert_eq!(
            i["IntegrationMethod"], "POST",
            "{integration_id}: Lambda is invoked with POST"
        );
        // Like the HTTP API's, by the function's fixed name: the senders'
        // roles and variables name the stage, whose deployment needs every
        // route, so naming the function's ARN would be a circle.
        let function = integrated_function(&i["IntegrationUri"], &names, &format!("{route_id} ({integration_id})"));
        assert!(
            in_template.insert((key.to_owned(), function.to_owned())),
            "{api_id}: route {key} twice"
        );
    }
    let in_table: BTreeSet<(String, String)> = SOCKET_ROUTES
        .iter()
        .map(|r| (r.route_key.to_owned(), r.function.to_owned()))
        .collect();
    assert_eq!(
        in_template, in_table,
        "routes of {api_id} vs routes::SOCKET_ROUTES (shared/src/routes.rs)"
    );
    // The local server's socket (GET /events) is what $connect is in AWS.
    for route in ROUTES.iter().filter(|r| r.handler.is_socket()) {
        assert!(
            SOCKET_ROUTES
                .iter()
                .any(|s| s.route_key == "$connect" && s.function == route.function),
            "{} {}: a socket route of the local server is served by $connect's function in AWS",
            route.method,
            route.path
        );
    }

    // A deployment is a snapshot of the routes: made after every one.
    let deployments = of_api("AWS::ApiGatewayV2::Deployment", api_id);
    assert_eq!(deployments.len(), 1, "{api_id}: one deployment");
    let (deployment_id, deployment) = deployments[0];
    let depends_on: BTreeSet<&str> = as_list(&deployment["DependsOn"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    for (route_id, _) in &routes {
        assert!(
            depends_on.contains(route_id),
            "{deployment_id}: DependsOn {route_id}, or it may deploy without it"
        );
    }
    let (stage_id, stage) = websocket_stage();
    assert_eq!(stage["Properties"]["StageName"], SOCKET_STAGE, "{stage_id}");
    assert_eq!(
        referenced_resource(&stage["Properties"]["DeploymentId"]),
        Some(deployment_id),
        "{stage_id}: serves the deployment"
    );
}

/// The agent's token is in the query string of every `$connect`: no log may
/// carry it.
#[test]
fn the_websocket_api_is_throttled_and_logged_without_tokens() {
    let (stage_id, stage) = websocket_stage();
    let (_, http_api) = resources_of_type(SERVERLESS_HTTP_API)[0];
    let p = &stage["Properties"];
    let settings = &p["DefaultRouteSettings"];
    for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        let value = Eval::with(&[]).eval(&settings[limit]);
        let value: f64 = value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{stage_id}: {limit}"));
        assert!(value > 0.0, "{stage_id}: {limit}");
        assert_eq!(
            settings[limit], http_api["Properties"]["DefaultRouteSettings"][limit],
            "{stage_id}: {limit} is the APIs' throttling parameter"
        );
    }
    // Execution logs and data traces would log the $connect request, token and all.
    assert_eq!(settings["DataTraceEnabled"], false, "{stage_id}: no data trace");
    let level = &settings["LoggingLevel"];
    assert!(
        level.is_null() || *level == "OFF",
        "{stage_id}: no execution logs (LoggingLevel {level})"
    );
    assert!(
        p.get("RouteSettings").is_none(),
        "{stage_id}: no route settings that could switch them on"
    );

    let logs = &p["AccessLogSettings"];
    let destination = referenced_resource(&logs["DestinationArn"]).expect("access logs go to a log group");
    assert_eq!(resource(destination)["Type"], "AWS::Logs::LogGroup");
    assert!(
        resource(destination)["Properties"]["RetentionInDays"].is_object(),
        "access logs expire"
    );
    assert_ne!(
        Some(destination),
        referenced_resource(&http_api["Properties"]["AccessLogSettings"]["DestinationArn"]),
        "{stage_id}: access logs of its own"
    );
    let format = logs["Format"].as_str().expect("access log format");
    let line: Value = serde_json::from_str(format).unwrap_or_else(|e| panic!("the access log format is JSON: {e}"));
    for field in ["requestId", "connectionId", "eventType", "routeKey", "status"] {
        assert!(line.get(field).is_some(), "{stage_id}: access logs carry {field}");
    }
    // Each field is one $context variable that says what happened, none
    // that repeats the request (its query string, headers or body).
    for (field, value) in line.as_object().expect("one JSON object per line") {
        let value = value.as_str().unwrap_or_default();
        assert!(
            value.starts_with("$context.") && !value.contains(char::is_whitespace),
            "{stage_id}: access log field {field} is one $context variable, not {value:?}"
        );
    }
    let lowercase = format.to_ascii_lowercase();
    for leak in [
        "querystring",
        "requestoverride",
        "$input",
        "$request",
        "header",
        "authorizer",
        "authorization",
        "token",
    ] {
        assert!(
            !lowercase.contains(leak),
            "{stage_id}: the access log format has {leak}"
        );
    }

    // API Gateway writes a WebSocket stage's logs with the CloudWatch role
    // of the account's API Gateway settings: the stack sets it before the
    // stage, and keeps it (and the role) when it is deleted, so the setting
    // never names a deleted role.
    let accounts = resources_of_type("AWS::ApiGateway::Account");
    assert_eq!(accounts.len(), 1, "{TEMPLATE}: the account's API Gateway settings");
    let (account_id, account) = accounts[0];
    assert!(
        as_list(&stage["DependsOn"])
            .iter()
            .any(|d| d.as_str() == Some(account_id)),
        "{stage_id}: DependsOn {account_id}"
    );
    let role = referenced_resource(&account["Properties"]["CloudWatchRoleArn"]).expect("a role of the template");
    assert_eq!(
        resource(role)["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "apigateway.amazonaws.com",
        "{role}: trusted by API Gateway"
    );
    for id in [account_id, role] {
        assert_eq!(resource(id)["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(resource(id)["UpdateReplacePolicy"], "Retain", "{id}");
    }
}

/// Browser dialers call the agent routes from their own origin.
#[test]
fn browsers_may_call_every_agent_route() {
    let (api_id, api) = resources_of_type(SERVERLESS_HTTP_API)[0];
    let cors = &api["Properties"]["DefinitionBody"]["x-amazon-apigateway-cors"];
    assert!(cors.is_object(), "{api_id}: CORS in the API's body");
    let list = |field: &str| -> BTreeSet<String> {
        as_list(&cors[field])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
            .collect()
    };
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(list("allowHeaders").contains(header), "{api_id}: CORS allows {header}");
    }
    // (A socket is opened by a WebSocket handshake, to the WebSocket API: no CORS.)
    for route in ROUTES
        .iter()
        .filter(|r| !r.handler.is_twilio() && !r.handler.is_socket())
    {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(list("allowMethods").contains(&method), "{api_id}: CORS allows {method}");
    }
    assert_eq!(
        cors["allowOrigins"],
        json!({"Ref": "CorsAllowOrigins"}),
        "{api_id}: origins are a parameter"
    );
}

/// SAM writes an `HttpApi` event's function ARN into the API's body, and every
/// function's environment names the API (its own URL): that is a circular
/// dependency CloudFormation refuses. Routes live in the API's DefinitionBody.
#[test]
fn routes_are_not_function_events_and_nothing_depends_on_itself() {
    for function in functions() {
        if let Some(events) = function.resource["Properties"]["Events"].as_object() {
            for (name, event) in events {
                let kind = event["Type"].as_str().unwrap_or_default();
                assert!(
                    kind != "HttpApi" && kind != "Api",
                    "{}: event {name}: put the route in HttpApi's DefinitionBody instead (see {TEMPLATE})",
                    function.id
                );
            }
        }
    }

    // Edges: resource -> what it needs first. SAM adds one edge per event
    // whose source (an API, a bucket) names the function.
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, r) in resources() {
        let mut refs = BTreeSet::new();
        references(&r["Properties"], &mut refs);
        match &r["DependsOn"] {
            Value::String(s) => {
                refs.insert(s.clone());
            }
            Value::Array(list) => refs.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            _ => {}
        }
        if r["Type"] == SERVERLESS_FUNCTION {
            refs.extend(
                template()["Globals"]["Function"]
                    .as_object()
                    .map_or_else(BTreeSet::new, |g| {
                        let mut out = BTreeSet::new();
                        references(&Value::Object(g.clone()), &mut out);
                        out
                    }),
            );
            if let Some(events) = r["Properties"]["Events"].as_object() {
                // Only these write the function into their source (an API's
                // body, a bucket's notifications); SQS, for one, gets a
                // separate event source mapping.
                let embedding = ["HttpApi", "Api", "S3"];
                for event in events.values().filter(|e| embedding.iter().any(|k| e["Type"] == *k)) {
                    let mut sources = BTreeSet::new();
                    references(&event["Properties"], &mut sources);
                    for source in sources {
                        needs.entry(source).or_default().insert(id.clone());
                    }
                }
            }
        }
        refs.retain(|r| resources().contains_key(r));
        needs.entry(id.clone()).or_default().extend(refs);
    }
    if let Some(cycle) = find_cycle(&needs) {
        panic!("{TEMPLATE}: circular dependency: {}", cycle.join(" -> "));
    }
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut HashMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = HashMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut state, &mut Vec::new()))
}

#[test]
fn every_function_has_its_own_role_log_group_and_invoke_permission() {
    let (api_id, _) = resources_of_type(SERVERLESS_HTTP_API)[0];
    let (events_api_id, _) = websocket_api();
    let mut roles = BTreeSet::new();
    for function in functions() {
        let (id, name, p) = (function.id, &function.name, &function.resource["Properties"]);
        assert!(
            p.get("Policies").is_none(),
            "{id}: permissions go on its own role, not SAM policies"
        );
        let role = referenced_resource(&p["Role"]).unwrap_or_else(|| panic!("{id}: Role is one of the template's"));
        assert_eq!(resource(role)["Type"], "AWS::IAM::Role", "{id}: {role}");
        assert!(roles.insert(role), "{id}: {role} serves one function only");
        let trust = &resource(role)["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(
            trust[0]["Principal"]["Service"], "lambda.amazonaws.com",
            "{role}: trusted by Lambda"
        );

        let logs = referenced_resource(&p["LoggingConfig"]["LogGroup"]).unwrap_or_else(|| panic!("{id}: log group"));
        let log_group = &resource(logs)["Properties"];
        assert_eq!(
            log_group["LogGroupName"],
            json!({"Fn::Sub": format!("/aws/lambda/${{AWS::StackName}}-{name}")}),
            "{logs}: Lambda's own name for it, so `sam logs` finds it"
        );
        assert!(!log_group["RetentionInDays"].is_null(), "{logs}: logs expire");

        let permissions: Vec<_> = resources_of_type("AWS::Lambda::Permission")
            .into_iter()
            .filter(|(_, perm)| referenced_resource(&perm["Properties"]["FunctionName"]) == Some(id))
            .collect();
        let sources = queues_consumed(&function).len() + streams_consumed(&function).len();
        if workers().contains(name) {
            assert!(
                permissions.is_empty(),
                "{id}: a worker is invoked by its queue or stream, not an API"
            );
            assert_eq!(sources, 1, "{id}: a worker consumes one queue or one stream");
            continue;
        }
        assert_eq!(sources, 0, "{id}: only workers consume queues or streams");
        // One invoke permission per API that routes to it: the HTTP API for
        // its rows of ROUTES, the WebSocket API for its rows of SOCKET_ROUTES.
        let mut apis = BTreeSet::new();
        if serves_http(name) {
            apis.insert(api_id);
        }
        if socket_functions().contains(name) {
            apis.insert(events_api_id);
        }
        assert!(!apis.is_empty(), "{id}: serves no route of either API");
        assert_eq!(
            permissions.len(),
            apis.len(),
            "{id}: one invoke permission per API that routes to it ({apis:?})"
        );
        let mut allowed = BTreeSet::new();
        for (perm_id, perm) in &permissions {
            let perm = &perm["Properties"];
            assert_eq!(perm["Principal"], "apigateway.amazonaws.com", "{perm_id}");
            assert_eq!(perm["Action"], "lambda:InvokeFunction", "{perm_id}");
            let mut source = BTreeSet::new();
            references(&perm["SourceArn"], &mut source);
            let api = apis
                .iter()
                .copied()
                .find(|api| source.contains(*api))
                .unwrap_or_else(|| panic!("{perm_id}: only an API that routes to {id} may invoke it"));
            assert_eq!(
                Eval::with(&[]).eval(&perm["SourceArn"]),
                Some(format!(
                    "arn:aws:execute-api:{REGION}:123456789012:{}/*",
                    Eval::resource_ref(api)
                )),
                "{perm_id}: SourceArn is {api}, any stage and route"
            );
            assert!(allowed.insert(api), "{id}: two invoke permissions for {api}");
        }
        assert_eq!(allowed, apis, "{id}: the APIs that may invoke it");
    }
}

/// The actions each AWS SDK call of the adapters needs (a transaction needs
/// the actions of its items).
fn actions_the_adapters_call() -> BTreeSet<String> {
    let calls: &[(&str, &str, &[&str])] = &[
        ("crates/aws/src/dynamodb.rs", "get_item", &["dynamodb:GetItem"]),
        ("crates/aws/src/dynamodb.rs", "put_item", &["dynamodb:PutItem"]),
        ("crates/aws/src/dynamodb.rs", "update_item", &["dynamodb:UpdateItem"]),
        ("crates/aws/src/dynamodb.rs", "query", &["dynamodb:Query"]),
        (
            "crates/aws/src/dynamodb.rs",
            "batch_get_item",
            &["dynamodb:BatchGetItem"],
        ),
        (
            "crates/aws/src/dynamodb.rs",
            "transact_write_items",
            &[
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem",
            ],
        ),
        ("crates/aws/src/kms.rs", "encrypt", &["kms:Encrypt"]),
        ("crates/aws/src/kms.rs", "decrypt", &["kms:Decrypt"]),
        ("crates/aws/src/s3.rs", "get_object", &["s3:GetObject"]),
        ("crates/aws/src/s3.rs", "head_object", &["s3:GetObject"]),
        ("crates/aws/src/s3.rs", "put_object", &["s3:PutObject"]),
        ("crates/aws/src/s3.rs", "create_multipart_upload", &["s3:PutObject"]),
        ("crates/aws/src/s3.rs", "upload_part", &["s3:PutObject"]),
        ("crates/aws/src/s3.rs", "complete_multipart_upload", &["s3:PutObject"]),
        (
            "crates/aws/src/s3.rs",
            "abort_multipart_upload",
            &["s3:AbortMultipartUpload"],
        ),
        ("crates/aws/src/sqs.rs", "send_message", &["sqs:SendMessage"]),
        (
            "crates/aws/src/sockets.rs",
            "post_to_connection",
            &["execute-api:ManageConnections"],
        ),
        (
            "crates/aws/src/sockets.rs",
            "delete_connection",
            &["execute-api:ManageConnections"],
        ),
    ];
    let mut actions = BTreeSet::new();
    for (file, call, needs) in calls {
        // A file that moved must fail here, not read as empty and grant nothing.
        let source = std::fs::read_to_string(root().join(file))
            .unwrap_or_else(|e| panic!("{file}, which the IAM check reads, cannot be read: {e}"));
        assert!(
            source.contains(&format!(".{call}()")),
            "{file} no longer calls .{call}(): update this list"
        );
        {
            actions.extend(needs.iter().map(|a| (*a).to_owned()));
        }
    }
    // Presigned playback URLs are signed for GetObject.
    actions.insert("s3:GetObject".into());
    actions
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Every policy statement anywhere in the template.
fn all_statements() -> Vec<(String, &'static Value)> {
    fn walk(path: String, value: &'static Value, out: &mut Vec<(String, &'static Value)>) {
        match value {
            Value::Object(map) => {
                if let Some(list) = map.get("Statement") {
                    for statement in as_list(list) {
                        out.push((path.clone(), statement));
                    }
                }
                for (key, inner) in map {
                    walk(format!("{path}.{key}"), inner, out);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(format!("{path}[{i}]"), inner, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("Resources".into(), &template()["Resources"], &mut out);
    out
}

#[test]
fn no_policy_allows_a_wildcard_action_resource_or_principal() {
    let statements = all_statements();
    assert!(!statements.is_empty());
    for (path, statement) in statements {
        if statement["Effect"] != "Allow" {
            continue; // a Deny may be as broad as it likes (the TLS-only bucket policy)
        }
        assert!(
            statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
            "{path}: no NotAction/NotResource in an Allow"
        );
        for action in as_list(&statement["Action"]) {
            let action = action.as_str().unwrap_or_else(|| panic!("{path}: action {action}"));
            assert!(!action.contains('*'), "{path}: wildcard action {action}");
        }
        for resource in as_list(&statement["Resource"]) {
            assert_ne!(resource, "*", "{path}: wildcard resource");
        }
        for principal in [&statement["Principal"], &statement["Principal"]["AWS"]] {
            assert_ne!(principal, "*", "{path}: wildcard principal");
        }
    }
    for (id, role) in resources_of_type("AWS::IAM::Role") {
        assert!(
            role["Properties"].get("ManagedPolicyArns").is_none(),
            "{id}: managed policies are opaque"
        );
    }
}

#[test]
fn function_roles_grant_only_what_the_adapters_call_on_our_own_resources() {
    let known = actions_the_adapters_call();
    let (events_api_id, _) = websocket_api();
    let (stage_id, _) = websocket_stage();
    let stream_arn = json!({"Fn::GetAtt": ["Table", "StreamArn"]});
    // `execute-api:ManageConnections` on the stage's connections, by verb:
    // POST (PostToConnection) and DELETE (DeleteConnection), or any.
    let connections = format!(
        "arn:aws:execute-api:{REGION}:123456789012:{}/{}/",
        Eval::resource_ref(events_api_id),
        Eval::resource_ref(stage_id)
    );
    for function in functions() {
        let role = referenced_resource(&function.resource["Properties"]["Role"]).expect("role");
        let logs = referenced_resource(&function.resource["Properties"]["LoggingConfig"]["LogGroup"]).expect("logs");
        let mut services_granted = BTreeSet::new();
        let mut actions_granted = BTreeSet::new();
        for policy in as_list(&resource(role)["Properties"]["Policies"]) {
            for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
                let mut targets = BTreeSet::new();
                references(&statement["Resource"], &mut targets);
                // Pseudo parameters (`${AWS::Region}` in an ARN) are no resources.
                targets.retain(|target| resources().contains_key(target));
                for action in as_list(&statement["Action"]) {
                    let action = action.as_str().expect("action");
                    let (service, _) = action.split_once(':').expect("service:Action");
                    let owners: Vec<&str> = match service {
                        "logs" => {
                            assert!(
                                ["logs:CreateLogStream", "logs:PutLogEvents"].contains(&action),
                                "{role}: {action}"
                            );
                            vec![logs]
                        }
                        "dynamodb" => vec!["Table"],
                        "kms" => vec!["SecretsKey"],
                        "s3" => vec!["RecordingsBucket"],
                        "sqs" => vec!["RecordingQueue"],
                        // The WebSocket API's connections, on its stage.
                        "execute-api" => vec![events_api_id, stage_id],
                        other => panic!("{role}: {action}: the functions call no {other} API"),
                    };
                    // What Lambda's event source mapping does with the function's role.
                    let consumer = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
                    if consumer.contains(&action) {
                        assert!(
                            !queues_consumed(&function).is_empty(),
                            "{role}: {action} without an SQS event"
                        );
                    } else if STREAM_READ.contains(&action) {
                        assert!(
                            !streams_consumed(&function).is_empty(),
                            "{role}: {action} without a DynamoDB stream event"
                        );
                        assert_eq!(
                            statement["Resource"], stream_arn,
                            "{role}: {action} on the table's stream only"
                        );
                    } else if service != "logs" {
                        assert!(
                            known.contains(action),
                            "{role}: {action} is never called by the adapters"
                        );
                        assert!(
                            !as_list(&statement["Resource"]).contains(&&stream_arn),
                            "{role}: {action} is not a stream action"
                        );
                    }
                    if service == "execute-api" {
                        for arn in as_list(&statement["Resource"]) {
                            let arn = Eval::with(&[]).eval(arn).unwrap_or_default();
                            let verb = arn
                                .strip_prefix(connections.as_str())
                                .and_then(|rest| rest.strip_suffix("/@connections/*"));
                            assert!(
                                matches!(verb, Some("POST" | "DELETE" | "*")),
                                "{role}: {action} on {arn}: only the connections of the stage {stage_id} of {events_api_id}"
                            );
                        }
                    }
                    let owners: BTreeSet<String> = owners.into_iter().map(str::to_owned).collect();
                    assert_eq!(targets, owners, "{role}: {action} applies to {owners:?} only");
                    services_granted.insert(service.to_owned());
                    actions_granted.insert(action.to_owned());
                }
            }
        }
        assert!(services_granted.contains("logs"), "{role}: every function logs");
        // A function serving only the dialer's built files (`Handler::Page`)
        // reads nothing; every other function reads the table.
        let routes_served: Vec<_> = ROUTES.iter().filter(|r| r.function == function.name).collect();
        let pages_only = !routes_served.is_empty() && routes_served.iter().all(|r| matches!(r.handler, Handler::Page));
        assert_eq!(
            services_granted.contains("dynamodb"),
            !pages_only,
            "{role}: the table, exactly for the functions that serve more than the dialer's files"
        );
        // Twilio webhooks are checked with the account's Auth Token, sealed in KMS.
        let serves_twilio = ROUTES
            .iter()
            .any(|r| r.function == function.name && r.handler.is_twilio());
        if serves_twilio {
            assert!(
                services_granted.contains("kms"),
                "{role}: a webhook opens the Auth Token"
            );
        }
        let env = environment(&function, &Eval::with(&[("AuthHs256Secret", &"s".repeat(32))]));
        assert_eq!(
            services_granted.contains("s3"),
            env.contains_key("SWITCHBOARD_RECORDINGS_BUCKET"),
            "{}: the recordings bucket variable goes exactly to the functions allowed to use the bucket",
            function.id
        );
        // The event source mapping of a stream reads it with the function's role.
        if !streams_consumed(&function).is_empty() {
            for action in STREAM_READ {
                assert!(
                    actions_granted.contains(action),
                    "{role}: Lambda reads the stream with {action}"
                );
            }
        }
        assert_eq!(
            actions_granted.contains("execute-api:ManageConnections"),
            env.contains_key("SWITCHBOARD_EVENTS_ENDPOINT"),
            "{}: the sockets endpoint variable goes exactly to the functions allowed to post to sockets",
            function.id
        );
        assert_eq!(
            actions_granted.contains("sqs:SendMessage"),
            env.contains_key("SWITCHBOARD_RECORDING_QUEUE_URL"),
            "{}: the queue variable goes exactly to the functions allowed to send to it",
            function.id
        );
    }
}

/// The names `shared/src/config.rs` reads, plus the log filter telemetry reads.
fn variables_the_app_reads() -> BTreeSet<String> {
    let source = read("shared/src/config.rs");
    let mut names: BTreeSet<String> = source
        .split('"')
        .filter(|s| {
            s.starts_with("SWITCHBOARD_")
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_owned)
        .collect();
    assert!(names.contains("SWITCHBOARD_PUBLIC_URL"), "config.rs was read");
    names.insert("RUST_LOG".into());
    names
}

#[test]
fn every_variable_a_function_sets_is_read_by_the_app() {
    let known = variables_the_app_reads();
    let globals = &template()["Globals"]["Function"]["Environment"]["Variables"];
    let mut declared: BTreeSet<String> = globals
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys().cloned())
        .collect();
    for function in functions() {
        let own = &function.resource["Properties"]["Environment"]["Variables"];
        declared.extend(own.as_object().into_iter().flat_map(|m| m.keys().cloned()));
    }
    for name in &declared {
        assert!(
            known.contains(name),
            "{TEMPLATE} sets {name}, which the app never reads"
        );
    }
    // Test-only and local-only settings stay out of the deployment.
    for local in [
        "SWITCHBOARD_DATA_DIR",
        "SWITCHBOARD_LISTEN",
        "SWITCHBOARD_TWILIO_API_URL",
    ] {
        assert!(!declared.contains(local), "{TEMPLATE} sets {local}");
    }
}

/// Each function starts: its environment, as deployed with each way of
/// signing agents in, is a valid configuration on the DynamoDB backend.
#[test]
fn every_function_starts_with_the_environment_the_template_gives_it() {
    let secret = "an-operator-secret-of-32-characters!";
    let api_url = format!(
        "https://{}.execute-api.{REGION}.amazonaws.com",
        Eval::resource_ref("HttpApi")
    );
    let scenarios: &[(&[(&str, &str)], &str)] = &[
        (&[("AuthHs256Secret", secret)], api_url.as_str()),
        (
            &[
                ("AuthJwksUrl", "https://idp.example/.well-known/jwks.json"),
                ("AuthIssuer", "https://idp.example/"),
                ("AuthAudience", "switchboard"),
                ("PublicUrl", "https://voice.example.com/sb"),
                ("TokenTtlSeconds", "900"),
            ],
            "https://voice.example.com/sb",
        ),
    ];
    // Live events: browsers are told the socket's URL (POST /token answers
    // it as eventsUrl); the senders post through the stage's Management API.
    let events_url = events_stage_url("wss");
    let events_endpoint = events_stage_url("https");
    let senders = socket_senders();
    for (overrides, public_url) in scenarios {
        let eval = Eval::with(overrides);
        for function in functions() {
            let env = environment(&function, &eval);
            let config = Config::from_lookup(|name| env.get(name).cloned())
                .unwrap_or_else(|e| panic!("{} with {overrides:?} would not start: {e}", function.id));
            assert_eq!(config.public_url.as_str(), *public_url, "{}", function.id);
            let Backend::Aws { table, kms_key_id, .. } = &config.backend else {
                panic!("{}: SWITCHBOARD_STORE=dynamodb", function.id);
            };
            assert_eq!(
                *table,
                Eval::resource_ref("Table"),
                "{}: the stack's table",
                function.id
            );
            assert_eq!(
                *kms_key_id,
                Eval::get_att("SecretsKey", "Arn"),
                "{}: the stack's key",
                function.id
            );
            let jwks = overrides.iter().any(|(k, _)| *k == "AuthJwksUrl");
            assert_eq!(matches!(config.auth.keys, KeySource::Jwks(_)), jwks, "{}", function.id);
            assert_eq!(config.auth.issuer.is_some(), jwks, "issuer only when set");
            assert_eq!(config.auth.workspace_claim, "workspace_id");
            assert_eq!(config.auth.role_claim, "role");
            assert_eq!(
                env.get("SWITCHBOARD_EVENTS_URL"),
                (function.name == "token").then_some(&events_url),
                "{}: SWITCHBOARD_EVENTS_URL is the stage's wss URL, for the token function only",
                function.id
            );
            assert_eq!(
                env.get("SWITCHBOARD_EVENTS_ENDPOINT"),
                senders.contains(&function.name).then_some(&events_endpoint),
                "{}: SWITCHBOARD_EVENTS_ENDPOINT is the stage's Management API, for {senders:?} only",
                function.id
            );
            if function.name == "token" {
                let ttl = if jwks { 900 } else { 3600 };
                assert_eq!(
                    config.token_lifetime.as_secs(),
                    ttl,
                    "TokenTtlSeconds reaches the token function"
                );
            }
        }
    }
}

#[test]
fn the_rules_refuse_no_sign_in_and_two_sign_ins() {
    let rules = template()["Rules"].as_object().expect("Rules");
    let passes = |overrides: &[(&str, &str)]| {
        let eval = Eval::with(overrides);
        rules.values().all(|rule| {
            rule["Assertions"]
                .as_array()
                .expect("Assertions")
                .iter()
                .all(|a| eval.truth(&a["Assert"]))
        })
    };
    let secret = "s".repeat(32);
    assert!(passes(&[("AuthHs256Secret", &secret)]));
    assert!(passes(&[("AuthJwksUrl", "https://idp.example/jwks")]));
    assert!(!passes(&[]), "no way to sign agents in");
    assert!(!passes(&[
        ("AuthHs256Secret", &secret),
        ("AuthJwksUrl", "https://idp.example/jwks")
    ]));
    // The secret stays out of the console and of `describe-stacks`.
    assert_eq!(template()["Parameters"]["AuthHs256Secret"]["NoEcho"], true);
}

#[test]
fn voice_webhooks_answer_before_twilio_gives_up() {
    for function in functions() {
        let serves_voice = ROUTES
            .iter()
            .any(|r| r.function == function.name && matches!(r.handler, Handler::TwilioVoice(_)));
        if serves_voice {
            let timeout = function.resource["Properties"]["Timeout"].as_u64().expect("Timeout");
            assert!(timeout <= 14, "{}: Twilio waits 15 s for TwiML", function.id);
        }
    }
}

#[test]
fn outputs_name_the_api_and_every_twilio_webhook() {
    let outputs = template()["Outputs"].as_object().expect("Outputs");
    let api_url = format!(
        "https://{}.execute-api.{REGION}.amazonaws.com",
        Eval::resource_ref("HttpApi")
    );
    let custom = "https://voice.example.com/sb";
    let default = Eval::with(&[]);
    let with_custom = Eval::with(&[("PublicUrl", custom)]);
    assert_eq!(
        default.eval(&outputs["ApiUrl"]["Value"]).as_deref(),
        Some(api_url.as_str())
    );
    assert_eq!(
        default.eval(&outputs["PublicUrl"]["Value"]).as_deref(),
        Some(api_url.as_str())
    );
    assert_eq!(
        with_custom.eval(&outputs["PublicUrl"]["Value"]).as_deref(),
        Some(custom)
    );
    // The live events socket is on the WebSocket API's own domain, whatever PublicUrl.
    let events_url = events_stage_url("wss");
    for eval in [&default, &with_custom] {
        assert_eq!(
            eval.eval(&outputs["EventsUrl"]["Value"]).as_deref(),
            Some(events_url.as_str()),
            "output EventsUrl"
        );
    }
    assert!(outputs["EventsUrl"]["Description"].is_string());

    // Twilio routes whose URL is fixed (no path parameters) are what an
    // operator may want to see; the others Switchboard builds per call.
    let expected: BTreeSet<&str> = ROUTES
        .iter()
        .filter(|r| r.handler.is_twilio() && !r.path.contains('{'))
        .map(|r| r.path)
        .collect();
    let mut shown = BTreeSet::new();
    for (name, output) in outputs.iter().filter(|(name, _)| name.starts_with("Webhook")) {
        let url = default.eval(&output["Value"]).unwrap_or_default();
        let path = url
            .strip_prefix(&api_url)
            .unwrap_or_else(|| panic!("output {name}: {url} is not on the public URL"));
        let custom_url = with_custom.eval(&output["Value"]).unwrap_or_default();
        assert_eq!(custom_url, format!("{custom}{path}"), "output {name} follows PublicUrl");
        assert!(output["Description"].is_string(), "output {name} says what it is for");
        shown.insert(path.to_owned());
    }
    let expected: BTreeSet<String> = expected.into_iter().map(str::to_owned).collect();
    assert_eq!(
        shown, expected,
        "Webhook* outputs vs the Twilio routes of the route table"
    );
}

#[test]
fn storage_is_private_encrypted_and_kept() {
    let (table_id, table) = resources_of_type("AWS::DynamoDB::Table")
        .into_iter()
        .next()
        .expect("a table");
    let t = &table["Properties"];
    assert_eq!(t["BillingMode"], "PAY_PER_REQUEST", "{table_id}");
    assert_eq!(
        t["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    );
    assert_eq!(
        t["AttributeDefinitions"],
        json!([
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "chPk", "AttributeType": "S"},
            {"AttributeName": "chSk", "AttributeType": "S"}
        ])
    );
    // The index a browser catches up from after a reconnect (a workspace's
    // sessions or messages in the order they changed), and the stream the
    // live events come from: both as the adapter's create_table makes them
    // for the tests (crates/aws/src/dynamodb.rs).
    assert_eq!(
        t["GlobalSecondaryIndexes"],
        json!([{
            "IndexName": CHANGES_INDEX,
            "KeySchema": [
                {"AttributeName": "chPk", "KeyType": "HASH"},
                {"AttributeName": "chSk", "KeyType": "RANGE"}
            ],
            "Projection": {"ProjectionType": "ALL"}
        }]),
        "{table_id}: the changes index"
    );
    assert_eq!(
        t["StreamSpecification"],
        json!({"StreamViewType": "NEW_IMAGE"}),
        "{table_id}: a stream of new items"
    );
    let adapter = read("crates/aws/src/dynamodb.rs");
    for made in [
        "const CH_PK: &str = \"chPk\"",
        "const CH_SK: &str = \"chSk\"",
        "ProjectionType::All",
        "StreamViewType::NewImage",
    ] {
        assert!(
            adapter.contains(made),
            "crates/aws/src/dynamodb.rs no longer has {made}: update the table of {TEMPLATE} and this check"
        );
    }
    assert_eq!(
        t["TimeToLiveSpecification"],
        json!({"AttributeName": "expiresAt", "Enabled": true})
    );
    assert_eq!(
        t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(t["SSESpecification"]["SSEEnabled"], true);

    let (bucket_id, bucket) = resources_of_type("AWS::S3::Bucket")
        .into_iter()
        .next()
        .expect("a bucket");
    let b = &bucket["Properties"];
    assert!(
        b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .is_string()
    );
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(b["PublicAccessBlockConfiguration"][flag], true, "{bucket_id}: {flag}");
    }
    let rules = b["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("lifecycle rules");
    assert!(
        rules
            .iter()
            .any(|r| r["Status"] == "Enabled" && r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1),
        "{bucket_id}: aborted multipart uploads are cleaned up after a day"
    );
    let tls_only = resources_of_type("AWS::S3::BucketPolicy")
        .into_iter()
        .any(|(_, policy)| {
            referenced_resource(&policy["Properties"]["Bucket"]) == Some(bucket_id)
                && as_list(&policy["Properties"]["PolicyDocument"]["Statement"])
                    .iter()
                    .any(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == json!("false"))
        });
    assert!(tls_only, "{bucket_id}: a policy denies requests without TLS");

    let (key_id, key) = resources_of_type("AWS::KMS::Key").into_iter().next().expect("a key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true, "{key_id}");
    assert!(
        resources_of_type("AWS::KMS::Alias")
            .iter()
            .any(|(_, alias)| referenced_resource(&alias["Properties"]["TargetKeyId"]) == Some(key_id)),
        "{key_id} has an alias"
    );

    // Data outlives the stack: `sam delete` leaves them (README, Deploy).
    for id in [table_id, bucket_id, key_id] {
        assert_eq!(resource(id)["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(resource(id)["UpdateReplacePolicy"], "Retain", "{id}");
    }
}

#[test]
fn queues_are_encrypted_drained_and_patient_enough() {
    let queues = resources_of_type("AWS::SQS::Queue");
    for (id, queue) in &queues {
        assert_eq!(
            queue["Properties"]["SqsManagedSseEnabled"], true,
            "{id}: encrypted at rest"
        );
    }
    for function in functions() {
        let timeout = function.resource["Properties"]["Timeout"].as_u64().expect("Timeout");
        for queue in queues_consumed(&function) {
            let p = &resource(&queue)["Properties"];
            assert_eq!(resource(&queue)["Type"], "AWS::SQS::Queue");
            // Lambda's advice: at least six times the consumer's timeout, or
            // messages come back while a copy is still running.
            let visibility = p["VisibilityTimeout"].as_u64().unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{queue}: visibility {visibility} s < 6 x {timeout} s"
            );
            let dead_letters = referenced_resource(&p["RedrivePolicy"]["deadLetterTargetArn"]);
            assert!(
                dead_letters.is_some_and(|d| resource(d)["Type"] == "AWS::SQS::Queue"),
                "{queue}: failed jobs end in a dead-letter queue"
            );
            assert!(
                p["RedrivePolicy"]["maxReceiveCount"].is_u64(),
                "{queue}: maxReceiveCount"
            );
        }
    }
}

/// Live events: the fan-out reads the table's stream, sees only new and
/// changed call sessions and messages, and never holds the stream up for
/// long (a browser catches up from the REST API when it reconnects).
#[test]
fn stream_workers_see_only_new_and_changed_calls_and_messages() {
    let stream_arn = json!({"Fn::GetAtt": ["Table", "StreamArn"]});
    let mut consumers = Vec::new();
    for function in functions() {
        let id = function.id;
        let Some(events) = function.resource["Properties"]["Events"].as_object() else {
            continue;
        };
        for (name, event) in events.iter().filter(|(_, e)| e["Type"] == "DynamoDB") {
            consumers.push(function.name.clone());
            assert!(
                workers().contains(&function.name),
                "{id}: a stream consumer serves no route (routes::WORKERS)"
            );
            let p = &event["Properties"];
            assert_eq!(p["Stream"], stream_arn, "{id}: event {name} reads the table's stream");
            // What is in the stream before it deploys is no news to anyone.
            assert_eq!(p["StartingPosition"], "LATEST", "{id}: event {name}");
            assert!(p["BatchSize"].is_u64(), "{id}: event {name}: BatchSize");
            // A record that keeps failing must not hold its shard up (Lambda's
            // default retries it until it expires from the stream, 24 hours).
            let retries = p["MaximumRetryAttempts"]
                .as_u64()
                .unwrap_or_else(|| panic!("{id}: event {name}: MaximumRetryAttempts"));
            assert!(retries <= 10, "{id}: event {name}: {retries} retries");
            let age = p["MaximumRecordAgeInSeconds"]
                .as_u64()
                .unwrap_or_else(|| panic!("{id}: event {name}: MaximumRecordAgeInSeconds"));
            assert!(
                (60..=3600).contains(&age),
                "{id}: event {name}: MaximumRecordAgeInSeconds {age} (Lambda takes 60 or more)"
            );
            let filters = as_list(&p["FilterCriteria"]["Filters"]);
            assert_eq!(filters.len(), 1, "{id}: event {name}: one filter");
            let pattern = filters[0]["Pattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: event {name}: the filter's Pattern is a JSON string"));
            let pattern: Value = serde_json::from_str(pattern)
                .unwrap_or_else(|e| panic!("{id}: event {name}: the filter's Pattern is not JSON: {e}"));
            assert_eq!(
                pattern,
                json!({
                    "eventName": ["INSERT", "MODIFY"],
                    "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "CALL#"}, {"prefix": "MSG#"}]}}}
                }),
                "{id}: event {name}: only inserted and modified call sessions (CALL#) and messages (MSG#)"
            );
        }
    }
    assert_eq!(consumers.len(), 1, "one consumer of the table's stream: {consumers:?}");
    assert_eq!(
        resource("Table")["Properties"]["StreamSpecification"]["StreamViewType"],
        "NEW_IMAGE",
        "the stream carries what the fan-out posts: the new item"
    );
}

#[test]
fn samconfig_builds_this_template_from_the_workspace_root() {
    let samconfig = read("samconfig.toml");
    assert!(
        samconfig.contains("template_file = \"infra/template.yaml\""),
        "samconfig.toml points at {TEMPLATE}"
    );
    assert!(PathBuf::from(ROOT).join(TEMPLATE).is_file());
    // Deploy must take the built template (whose CodeUris are the bootstraps),
    // never infra/template.yaml (whose CodeUris are source folders).
    let deploy = samconfig
        .split("[default.deploy.parameters]")
        .nth(1)
        .expect("[default.deploy.parameters]");
    let deploy = deploy.split("\n[").next().unwrap_or_default();
    assert!(
        !deploy.lines().any(|l| l.trim_start().starts_with("template_file")),
        "sam deploy uses .aws-sam/build/template.yaml"
    );
}
