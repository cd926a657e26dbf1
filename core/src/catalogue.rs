//! The Ajax route catalogue: every operation the gateway serves, with its method, path template and
//! class, derived from Ajax's spec by `tools/gen_catalogue.py` into `core/catalogue/routes.tsv`.
//!
//! Matching walks a segment trie (literal segments before parameters, with backtracking), so
//! `/user/resetPassword` and `/user/{userId}` are told apart without any ordering rules.

use std::collections::HashMap;
use std::sync::OnceLock;

const BUILTIN: &str = include_str!("../catalogue/routes.tsv");

/// What kind of operation a route is: what plans grant and what the throttle's lanes are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Hub list and hub detail: the reads every plan allows.
    HubRead,
    /// Every other read (devices, rooms, groups, logs, ...).
    Read,
    /// State-changing commands: arming, device commands, hub commands.
    Command,
    /// The panic button.
    Panic,
    /// Configuration changes (PUT/POST/DELETE that are not commands).
    Settings,
    /// Login, refresh, logout: served by the control plane.
    Account,
    /// Operations without a session (account creation, password reset): not served by the gateway.
    Public,
}

impl RouteClass {
    /// The class's name as written in the catalogue, metrics and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HubRead => "hub_read",
            Self::Read => "read",
            Self::Command => "command",
            Self::Panic => "panic",
            Self::Settings => "settings",
            Self::Account => "account",
            Self::Public => "public",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "hub_read" => Self::HubRead,
            "read" => Self::Read,
            "command" => Self::Command,
            "panic" => Self::Panic,
            "settings" => Self::Settings,
            "account" => Self::Account,
            "public" => Self::Public,
            _ => return None,
        })
    }
}

/// One operation of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// Path template below `/api`, e.g. `/user/{userId}/hubs/{hubId}`.
    pub template: String,
    pub operation_id: String,
    pub class: RouteClass,
    /// Names of the template's parameters, in path order.
    pub params: Vec<String>,
    /// Index into `params` of the path's owner (`{userId}` or `{invokerId}`), when it has one.
    pub owner: Option<usize>,
}

/// A request path matched to a route, with the parameter values taken from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'c, 'p> {
    pub route: &'c Route,
    pub values: Vec<&'p str>,
}

impl<'c, 'p> RouteMatch<'c, 'p> {
    /// The value of a named path parameter.
    pub fn param(&self, name: &str) -> Option<&'p str> {
        let index = self.route.params.iter().position(|p| p == name)?;
        self.values.get(index).copied()
    }

    /// The Ajax user id the path belongs to (`{userId}` or `{invokerId}`).
    pub fn owner(&self) -> Option<&'p str> {
        self.route.owner.and_then(|i| self.values.get(i).copied())
    }
}

/// Why a path found no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No template has this shape.
    UnknownPath,
    /// The path exists, but not with this method.
    MethodNotAllowed,
}

/// Error in the catalogue file itself.
#[derive(Debug, thiserror::Error)]
#[error("catalogue line {line}: {reason}")]
pub struct CatalogueError {
    pub line: usize,
    pub reason: String,
}

#[derive(Default)]
struct Node {
    literals: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Route indices by method at this node (a path ends here).
    methods: HashMap<String, usize>,
}

/// The catalogue: its routes and a segment trie to match request paths against them.
pub struct Catalogue {
    routes: Vec<Route>,
    root: Node,
}

impl Catalogue {
    /// The catalogue generated from Ajax's spec and compiled into the binary.
    pub fn builtin() -> &'static Catalogue {
        static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
        // The file is compiled in and checked by this module's tests, so parsing cannot fail at run time.
        CATALOGUE.get_or_init(|| Catalogue::parse(BUILTIN).expect("builtin catalogue parses"))
    }

    /// Parses the TSV form: `METHOD\tTEMPLATE\tOPERATION\tCLASS`, `#` comments.
    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let mut catalogue = Catalogue {
            routes: Vec::new(),
            root: Node::default(),
        };
        for (number, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: &str| CatalogueError {
                line: number + 1,
                reason: reason.to_owned(),
            };
            let fields: Vec<&str> = line.split('\t').collect();
            let [method, template, operation_id, class] = fields[..] else {
                return Err(fail("expected four tab-separated fields"));
            };
            let class = RouteClass::parse(class).ok_or_else(|| fail("unknown class"))?;
            if !template.starts_with('/') {
                return Err(fail("template must start with /"));
            }
            let params: Vec<String> = segments(template)
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            let owner = params.iter().position(|p| p == "userId" || p == "invokerId");
            let index = catalogue.routes.len();
            let node = catalogue.insert(template);
            if node.methods.insert(method.to_owned(), index).is_some() {
                return Err(fail("duplicate method and path"));
            }
            catalogue.routes.push(Route {
                method: method.to_owned(),
                template: template.to_owned(),
                operation_id: operation_id.to_owned(),
                class,
                params,
                owner,
            });
        }
        Ok(catalogue)
    }

    fn insert(&mut self, template: &str) -> &mut Node {
        let mut node = &mut self.root;
        for segment in segments(template) {
            node = if segment.starts_with('{') {
                node.param.get_or_insert_with(Box::default)
            } else {
                node.literals.entry(segment.to_owned()).or_default()
            };
        }
        node
    }

    /// All routes, in catalogue order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Matches a normalised path below `/api` (e.g. `/user/abc/hubs`) and a method.
    pub fn lookup<'p>(&self, method: &str, path: &'p str) -> Result<RouteMatch<'_, 'p>, Miss> {
        let parts: Vec<&'p str> = segments(path).collect();
        let mut values = Vec::with_capacity(4);
        let node = find(&self.root, &parts, &mut values).ok_or(Miss::UnknownPath)?;
        let index = *node.methods.get(method).ok_or(Miss::MethodNotAllowed)?;
        Ok(RouteMatch {
            route: &self.routes[index],
            values,
        })
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn find<'n, 'p>(node: &'n Node, parts: &[&'p str], values: &mut Vec<&'p str>) -> Option<&'n Node> {
    let Some((first, rest)) = parts.split_first() else {
        return (!node.methods.is_empty()).then_some(node);
    };
    if let Some(found) = node.literals.get(*first).and_then(|child| find(child, rest, values)) {
        return Some(found);
    }
    let child = node.param.as_deref()?;
    values.push(first);
    let found = find(child, rest, values);
    if found.is_none() {
        values.pop();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_covers_every_user_operation_and_the_account_calls() {
        let catalogue = Catalogue::builtin();
        let user_ops = catalogue
            .routes()
            .iter()
            .filter(|r| r.template.starts_with("/user"))
            .count();
        assert_eq!(user_ops, 211, "the spec has 211 user-mode operations");
        for op in ["login", "refresh", "logout"] {
            let route = catalogue.lookup("POST", &format!("/{op}")).expect(op).route;
            assert_eq!(route.class, RouteClass::Account);
        }
    }

    #[test]
    fn hub_reads_commands_and_panic_are_classified() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.lookup("GET", "/user/u1/hubs").expect("hubs").route.class,
            RouteClass::HubRead
        );
        assert_eq!(
            c.lookup("GET", "/user/u1/hubs/h1").expect("hub").route.class,
            RouteClass::HubRead
        );
        assert_eq!(
            c.lookup("GET", "/user/u1/hubs/h1/devices").expect("devs").route.class,
            RouteClass::Read
        );
        let arm = c.lookup("PUT", "/user/u1/hubs/h1/commands/arming").expect("arm");
        assert_eq!(arm.route.class, RouteClass::Command);
        assert_eq!(arm.route.operation_id, "sendArm");
        let panic = c.lookup("PUT", "/user/u1/hubs/h1/commands/panic").expect("panic");
        assert_eq!(panic.route.class, RouteClass::Panic);
        let device = c
            .lookup("POST", "/user/u1/hubs/h1/devices/d1/command")
            .expect("device command");
        assert_eq!(device.route.class, RouteClass::Command);
        assert_eq!(
            c.lookup("PUT", "/user/u1/hubs/h1").expect("update").route.class,
            RouteClass::Settings
        );
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let c = Catalogue::builtin();
        let reset = c.lookup("PUT", "/user/resetPassword").expect("reset");
        assert_eq!(reset.route.operation_id, "requestPasswordReset");
        assert_eq!(reset.route.class, RouteClass::Public);
        let user = c.lookup("PUT", "/user/abc").expect("update user");
        assert_eq!(user.route.operation_id, "updateUser");
        assert_eq!(user.owner(), Some("abc"));
    }

    #[test]
    fn parameters_and_owner_are_extracted() {
        let c = Catalogue::builtin();
        let m = c.lookup("GET", "/user/U1/hubs/H1/devices/D1").expect("device");
        assert_eq!(m.owner(), Some("U1"));
        assert_eq!(m.param("hubId"), Some("H1"));
        assert_eq!(m.param("deviceId"), Some("D1"));
        let invoker = c.lookup("GET", "/user/U2/hubs/H1/scheduledWakeUp").expect("invoker");
        assert_eq!(invoker.owner(), Some("U2"));
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        let c = Catalogue::builtin();
        assert_eq!(c.lookup("GET", "/user/u1/nothing-here").err(), Some(Miss::UnknownPath));
        assert_eq!(c.lookup("GET", "/company/c1/hubs").err(), Some(Miss::UnknownPath));
        assert_eq!(c.lookup("DELETE", "/login").err(), Some(Miss::MethodNotAllowed));
        assert_eq!(c.lookup("GET", "/").err(), Some(Miss::UnknownPath));
    }

    #[test]
    fn malformed_catalogue_lines_are_reported_with_their_number() {
        let err = Catalogue::parse("# header\nGET\t/x\top\tnonsense\n")
            .err()
            .expect("error");
        assert_eq!(err.line, 2);
        let dup = Catalogue::parse("GET\t/x\ta\tread\nGET\t/x\tb\tread\n")
            .err()
            .expect("dup");
        assert_eq!(dup.line, 2);
    }
}
