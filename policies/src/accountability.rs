//! Who is asking: the user, their role and the roles above it, the policies that apply to
//! them, and what those policies grant wholesale (admin, app access). Resolved from the
//! `directus_roles`, `directus_access` and `directus_policies` rows the way Directus 11 does.

use std::collections::HashSet;
use std::net::IpAddr;

/// The actions permissions are granted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Share,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Share,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Share => "share",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accountability {
    pub user: Option<String>,
    pub role: Option<String>,
    /// The user's role first, then the roles above it.
    pub roles: Vec<String>,
    /// The ids of the policies that apply, in Directus's order.
    pub policies: Vec<String>,
    pub admin: bool,
    pub app: bool,
    pub ip: Option<IpAddr>,
}

impl Accountability {
    /// Someone not logged in, before the Public policy is looked up.
    pub fn anonymous(ip: Option<IpAddr>) -> Self {
        Accountability {
            user: None,
            role: None,
            roles: Vec::new(),
            policies: Vec::new(),
            admin: false,
            app: false,
            ip,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub id: String,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub role: Option<String>,
    pub user: Option<String>,
    pub policy: String,
    pub sort: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub id: String,
    pub admin_access: bool,
    pub app_access: bool,
    /// IPs and CIDR ranges the policy is limited to; empty: anywhere.
    pub ip_access: Vec<String>,
}

/// The role rows, access rows and policy rows, read once and shared by every request
/// until one of those tables changes.
#[derive(Debug, Clone, Default)]
pub struct AccessModel {
    pub roles: Vec<RoleRecord>,
    pub access: Vec<AccessRecord>,
    pub policies: Vec<PolicyRecord>,
}

impl AccessModel {
    /// The role and the roles above it. A cycle in `parent` ends the walk.
    pub fn role_chain(&self, role: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut current = Some(role.to_string());
        while let Some(id) = current {
            if !seen.insert(id.clone()) {
                break;
            }
            current = self
                .roles
                .iter()
                .find(|r| r.id == id)
                .and_then(|r| r.parent.clone());
            chain.push(id);
        }
        chain
    }

    /// Resolves who is asking. `user` is the user's id and role; `None` for the public.
    pub fn accountability(
        &self,
        user: Option<(&str, Option<&str>)>,
        ip: Option<IpAddr>,
    ) -> Accountability {
        let (user_id, role) = match user {
            Some((id, role)) => (Some(id.to_string()), role.map(str::to_string)),
            None => (None, None),
        };
        let roles = role
            .as_deref()
            .map(|r| self.role_chain(r))
            .unwrap_or_default();
        // Directus: users without a role get the Public policy; policies attached to the
        // user apply in every case.
        let applies = |a: &AccessRecord| -> bool {
            let by_user = user_id.is_some() && a.user.is_some() && a.user == user_id;
            let by_role = if roles.is_empty() {
                a.role.is_none() && a.user.is_none()
            } else {
                a.role.as_ref().is_some_and(|r| roles.contains(r))
            };
            by_user || by_role
        };
        // Root role first, then roles towards the user's own, then user policies; within
        // each by `sort`.
        let rank = |a: &AccessRecord| -> (usize, i64) {
            let group = match &a.role {
                Some(r) => roles.len() - roles.iter().position(|x| x == r).unwrap_or(0),
                None if a.user.is_some() => roles.len() + 1,
                None => 0,
            };
            (group, a.sort.unwrap_or(i64::MAX))
        };
        let mut applicable: Vec<&AccessRecord> =
            self.access.iter().filter(|a| applies(a)).collect();
        applicable.sort_by_key(|a| rank(a));
        let mut policies: Vec<String> = Vec::new();
        let mut admin = false;
        let mut app = false;
        for access in applicable {
            let Some(policy) = self.policies.iter().find(|p| p.id == access.policy) else {
                continue;
            };
            if !ip_allowed(&policy.ip_access, ip) || policies.contains(&policy.id) {
                continue;
            }
            admin |= policy.admin_access;
            app |= policy.app_access;
            policies.push(policy.id.clone());
        }
        Accountability {
            user: user_id,
            role,
            roles,
            policies,
            admin,
            app: app || admin,
            ip,
        }
    }
}

/// Whether `ip` is in one of the policy's networks. A policy limited to networks does not
/// apply when the client's address is unknown or a network entry cannot be read.
pub fn ip_allowed(networks: &[String], ip: Option<IpAddr>) -> bool {
    if networks.is_empty() {
        return true;
    }
    let Some(ip) = ip else {
        return false;
    };
    networks.iter().any(|n| in_network(n.trim(), ip))
}

fn in_network(network: &str, ip: IpAddr) -> bool {
    let (base, bits) = match network.split_once('/') {
        Some((b, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (b, Some(bits)),
            Err(_) => return false,
        },
        None => (network, None),
    };
    let Ok(base) = base.parse::<IpAddr>() else {
        return false;
    };
    match (base, ip) {
        (IpAddr::V4(b), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(b) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(b), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(b) & mask == u128::from(i) & mask
        }
        (IpAddr::V4(b), IpAddr::V6(i)) => i
            .to_ipv4_mapped()
            .is_some_and(|i| in_network(&format!("{b}/{}", bits.unwrap_or(32)), IpAddr::V4(i))),
        (IpAddr::V6(_), IpAddr::V4(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> AccessModel {
        AccessModel {
            roles: vec![
                RoleRecord {
                    id: "staff".into(),
                    parent: None,
                },
                RoleRecord {
                    id: "editor".into(),
                    parent: Some("staff".into()),
                },
                RoleRecord {
                    id: "loop".into(),
                    parent: Some("loop".into()),
                },
            ],
            access: vec![
                AccessRecord {
                    role: None,
                    user: None,
                    policy: "public".into(),
                    sort: Some(1),
                },
                AccessRecord {
                    role: Some("staff".into()),
                    user: None,
                    policy: "staff-p".into(),
                    sort: None,
                },
                AccessRecord {
                    role: Some("editor".into()),
                    user: None,
                    policy: "editor-p".into(),
                    sort: None,
                },
                AccessRecord {
                    role: None,
                    user: Some("u2".into()),
                    policy: "personal".into(),
                    sort: None,
                },
                AccessRecord {
                    role: Some("editor".into()),
                    user: None,
                    policy: "office-only".into(),
                    sort: Some(2),
                },
            ],
            policies: vec![
                PolicyRecord {
                    id: "public".into(),
                    admin_access: false,
                    app_access: false,
                    ip_access: vec![],
                },
                PolicyRecord {
                    id: "staff-p".into(),
                    admin_access: false,
                    app_access: true,
                    ip_access: vec![],
                },
                PolicyRecord {
                    id: "editor-p".into(),
                    admin_access: false,
                    app_access: false,
                    ip_access: vec![],
                },
                PolicyRecord {
                    id: "personal".into(),
                    admin_access: true,
                    app_access: false,
                    ip_access: vec![],
                },
                PolicyRecord {
                    id: "office-only".into(),
                    admin_access: false,
                    app_access: false,
                    ip_access: vec!["10.0.0.0/8".into()],
                },
            ],
        }
    }

    #[test]
    fn roles_nest_and_bring_their_parents_policies() {
        let m = model();
        let a = m.accountability(Some(("u1", Some("editor"))), None);
        assert_eq!(a.roles, vec!["editor".to_string(), "staff".into()]);
        assert_eq!(a.policies, vec!["staff-p".to_string(), "editor-p".into()]);
        assert!(a.app && !a.admin);
    }

    #[test]
    fn ip_limited_policies_apply_only_inside_their_network() {
        let m = model();
        let inside = m.accountability(Some(("u1", Some("editor"))), "10.1.2.3".parse().ok());
        assert!(inside.policies.contains(&"office-only".to_string()));
        let outside = m.accountability(Some(("u1", Some("editor"))), "192.168.1.1".parse().ok());
        assert!(!outside.policies.contains(&"office-only".to_string()));
    }

    #[test]
    fn the_public_and_roleless_users_get_the_public_policy() {
        let m = model();
        assert_eq!(
            m.accountability(None, None).policies,
            vec!["public".to_string()]
        );
        let roleless = m.accountability(Some(("u2", None)), None);
        assert_eq!(
            roleless.policies,
            vec!["public".to_string(), "personal".into()]
        );
        assert!(roleless.admin && roleless.app);
        let with_role = m.accountability(Some(("u3", Some("staff"))), None);
        assert!(!with_role.policies.contains(&"public".to_string()));
    }

    #[test]
    fn a_role_cycle_ends() {
        assert_eq!(model().role_chain("loop"), vec!["loop".to_string()]);
    }

    #[test]
    fn networks_match() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(ip_allowed(&["127.0.0.1".into()], ip("127.0.0.1")));
        assert!(!ip_allowed(&["127.0.0.1".into()], ip("127.0.0.2")));
        assert!(ip_allowed(&["192.168.0.0/16".into()], ip("192.168.44.1")));
        assert!(ip_allowed(&["::1".into()], ip("::1")));
        assert!(ip_allowed(&["10.0.0.0/8".into()], ip("::ffff:10.2.3.4")));
        assert!(!ip_allowed(&["garbage".into()], ip("10.0.0.1")));
        assert!(!ip_allowed(&["10.0.0.0/8".into()], None));
        assert!(ip_allowed(&[], None));
    }
}
