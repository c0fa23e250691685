//! The names users type for the library's choices (engines, optimizers, regularizers …): one
//! spelling per value, parsed (`FromStr`) and printed (`Display`, `name()`) the same way, with an
//! error that lists the choices. The command line parses flags with them; the library never needs
//! to know a flag.

/// Implements `name()`, `Display`, `FromStr` and `CHOICES` for a fieldless enum from its
/// spellings: `named!(OptimizerKind, "optimizer", [Adam => "adam", Sgd => "sgd"]);`
macro_rules! named {
    ($ty:ty, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value's spelling, in order.
            pub const CHOICES: &'static [&'static str] = &[$($name),+];

            /// The value's spelling.
            pub fn name(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok(<$ty>::$variant),)+
                    _ => Err(format!(
                        "unknown {} '{s}': expected {}",
                        $what,
                        <$ty>::CHOICES.join(", ")
                    )),
                }
            }
        }
    };
}

pub(crate) use named;

#[cfg(test)]
mod tests {
    use crate::train::OptimizerKind;

    #[test]
    fn names_round_trip_and_errors_list_the_choices() {
        for &name in OptimizerKind::CHOICES {
            let v: OptimizerKind = name.parse().unwrap();
            assert_eq!(v.to_string(), name);
        }
        let e = "rmsprop".parse::<OptimizerKind>().unwrap_err();
        assert_eq!(e, "unknown optimizer 'rmsprop': expected adam, sgd");
    }
}
