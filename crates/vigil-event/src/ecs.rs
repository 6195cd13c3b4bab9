//! ECS categorization fields as types: the allowed values of `event.kind`, `event.category`,
//! `event.type` and `event.outcome` (ECS 8.x), so code that classifies an event cannot put a
//! type where an outcome belongs or misspell a value the rules match on.
//!
//! Each enum has `as_str` (the ECS value), [`std::str::FromStr`] (exact, lower case, as ECS
//! writes them), `Display`, `ALL`, and converts into a [`crate::Value`] for
//! [`crate::Event::insert`].
//!
//! ```
//! use vigil_event::{Category, EventType, Outcome};
//! assert_eq!(Category::IntrusionDetection.as_str(), "intrusion_detection");
//! assert_eq!("denied".parse::<EventType>(), Ok(EventType::Denied));
//! assert!("succes".parse::<Outcome>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// A value that is not one of an ECS field's allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an allowed value of {field}")]
pub struct NotAllowed {
    /// The ECS field (`event.outcome`, …).
    pub field: &'static str,
    /// The value given.
    pub value: String,
}

macro_rules! ecs_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $field:expr, {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every allowed value, in ECS's order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )+];

            /// The ECS field this type gives values of.
            pub const FIELD: &'static str = $field;

            /// The value as ECS writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = NotAllowed;

            fn from_str(s: &str) -> Result<$name, NotAllowed> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(NotAllowed { field: $field, value: s.to_owned() }),
                }
            }
        }

        impl From<$name> for crate::Value {
            fn from(v: $name) -> crate::Value {
                crate::Value::from(v.as_str())
            }
        }
    };
}

ecs_enum! {
    /// `event.kind`: the highest-level classification — what sort of record this is.
    EventKind, "event.kind", {
        /// A detection raised by a rule.
        Alert => "alert",
        /// Information about an asset.
        Asset => "asset",
        /// Information added to other events.
        Enrichment => "enrichment",
        /// Something that happened (the usual kind).
        Event => "event",
        /// A numeric measurement.
        Metric => "metric",
        /// The state of something at a point in time.
        State => "state",
        /// An error in the pipeline that processed the event.
        PipelineError => "pipeline_error",
        /// A signal from a detection rule (a candidate alert).
        Signal => "signal",
    }
}

ecs_enum! {
    /// `event.category`: the domain the event belongs to.
    Category, "event.category", {
        /// Calls to an API.
        Api => "api",
        /// Credentials checked: logins, token checks.
        Authentication => "authentication",
        /// Settings changed or read.
        Configuration => "configuration",
        /// Database activity.
        Database => "database",
        /// OS driver activity.
        Driver => "driver",
        /// Mail.
        Email => "email",
        /// Files created, changed, read.
        File => "file",
        /// Host-level information.
        Host => "host",
        /// Identity and access management: users, groups, tokens.
        Iam => "iam",
        /// Detections by an IDS/IPS.
        IntrusionDetection => "intrusion_detection",
        /// Libraries loaded.
        Library => "library",
        /// Malware detections.
        Malware => "malware",
        /// Network traffic.
        Network => "network",
        /// Software packages.
        Package => "package",
        /// Processes started, stopped.
        Process => "process",
        /// The Windows registry.
        Registry => "registry",
        /// Sessions opened or closed.
        Session => "session",
        /// Threat intelligence.
        Threat => "threat",
        /// Vulnerability findings.
        Vulnerability => "vulnerability",
        /// Web servers and proxies.
        Web => "web",
    }
}

ecs_enum! {
    /// `event.type`: what happened, within the category.
    EventType, "event.type", {
        /// Something was accessed.
        Access => "access",
        /// An administrative action.
        Admin => "admin",
        /// Something was allowed.
        Allowed => "allowed",
        /// Something was changed.
        Change => "change",
        /// A connection.
        Connection => "connection",
        /// Something was created.
        Creation => "creation",
        /// Something was deleted.
        Deletion => "deletion",
        /// Something was denied.
        Denied => "denied",
        /// Something ended.
        End => "end",
        /// An error.
        Error => "error",
        /// About a group.
        Group => "group",
        /// A threat indicator.
        Indicator => "indicator",
        /// Information only.
        Info => "info",
        /// Something was installed.
        Installation => "installation",
        /// A protocol was detected.
        Protocol => "protocol",
        /// Something started.
        Start => "start",
        /// About a user.
        User => "user",
    }
}

ecs_enum! {
    /// `event.outcome`: whether the action succeeded.
    Outcome, "event.outcome", {
        /// It failed.
        Failure => "failure",
        /// It succeeded.
        Success => "success",
        /// Not known.
        Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = NotAllowed>,
    {
        let mut seen = std::collections::HashSet::new();
        for &v in all {
            let text = v.to_string();
            assert!(seen.insert(text.clone()), "{text} twice");
            assert_eq!(text.parse::<T>(), Ok(v));
            assert_eq!(text, text.to_ascii_lowercase());
        }
    }

    #[test]
    fn values_round_trip_and_are_distinct() {
        round_trip(EventKind::ALL);
        round_trip(Category::ALL);
        round_trip(EventType::ALL);
        round_trip(Outcome::ALL);
        assert_eq!(Category::ALL.len(), 20);
        assert_eq!(EventType::ALL.len(), 17);
    }

    #[test]
    fn unknown_values_name_the_field() {
        let err = "Success".parse::<Outcome>().unwrap_err();
        assert_eq!(err.field, "event.outcome");
        assert_eq!(
            err.to_string(),
            r#""Success" is not an allowed value of event.outcome"#
        );
        // An outcome is not a type, nor the reverse.
        assert!("success".parse::<EventType>().is_err());
        assert!("change".parse::<Outcome>().is_err());
    }
}
