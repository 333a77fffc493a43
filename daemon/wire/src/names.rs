//! Wire names of the enums that travel as lowercase strings: one definition gives each its
//! `ALL`, `as_str`, `parse`, `Display` and `FromStr`, so the names are written once (serde's
//! `rename_all` must agree; the tests below hold them to it).

/// Implements the wire-name methods and traits for an enum of unit variants;
/// `$what` names the thing in `FromStr` errors ("unknown status \"x\"; expected …").
macro_rules! wire_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<$ty> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?}; expected {}", $what, $crate::names::one_of(&names))
                })
            }
        }
    };
}

/// `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    /// Each name must be what serde writes, and parse back.
    fn agrees<T>(all: &[T], name: fn(&T) -> &'static str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), name(v), "{v:?}");
            let back: T = serde_json::from_value(name(v).into()).unwrap();
            assert_eq!(&back, v);
        }
    }

    #[test]
    fn names_match_serde_and_parse_back() {
        agrees(JobStatus::ALL, |v| v.as_str());
        agrees(WebhookStatus::ALL, |v| v.as_str());
        agrees(WebhookEventType::ALL, |v| v.as_str());
        agrees(Severity::ALL, |v| v.as_str());
        agrees(AlertState::ALL, |v| v.as_str());
        agrees(AlertDeliveryStatus::ALL, |v| v.as_str());
        agrees(ServerStatus::ALL, |v| v.as_str());
        agrees(QueueHealth::ALL, |v| v.as_str());
        agrees(HealthStatus::ALL, |v| v.as_str());
        assert_eq!("dead".parse::<WebhookStatus>(), Ok(WebhookStatus::Dead));
        assert_eq!(
            "done".parse::<JobStatus>(),
            Err("unknown status \"done\"; expected pending, processing, completed, failed or cancelled".into())
        );
        assert_eq!(
            "x".parse::<WebhookEventType>(),
            Err("unknown webhook event type \"x\"; expected job.completed, job.failed or job.cancelled".into())
        );
    }
}
