//! One limit per text field, the same on every path that writes or reads it: the commands
//! (`add`, `idea add`, `person add`, tags created on first use, edits) and `import`. A
//! journal the CLI can write is a journal `import` takes back.

use crate::Error;

/// A text field with a length limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A shift's text: one small action.
    ShiftText,
    /// An idea's title.
    IdeaTitle,
    /// A person's name.
    PersonName,
}

/// Why a value does not fit its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// Nothing but white space.
    Empty,
    /// Longer than the field's limit.
    TooLong,
}

impl Field {
    /// The most characters (Unicode scalar values, after white space is folded) it holds.
    pub const fn max_chars(self) -> usize {
        match self {
            Field::ShiftText => 500,
            Field::IdeaTitle | Field::PersonName => 200,
        }
    }

    /// `value` with runs of white space folded to one space and the ends trimmed, if it fits.
    pub fn fit(self, value: &str) -> Result<String, Unfit> {
        let clean = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if clean.is_empty() {
            Err(Unfit::Empty)
        } else if clean.chars().count() > self.max_chars() {
            Err(Unfit::TooLong)
        } else {
            Ok(clean)
        }
    }

    /// [`Field::fit`], with a message for the person typing it.
    pub fn clean(self, value: &str) -> Result<String, Error> {
        self.fit(value).map_err(|unfit| {
            let max = self.max_chars();
            Error::Invalid(match (self, unfit) {
                (Field::ShiftText, Unfit::Empty) => {
                    "the text is empty: say what the shift is, e.g. \"Email Sam\"".into()
                }
                (Field::ShiftText, Unfit::TooLong) => format!(
                    "the text is over {max} characters: keep it to one small action, and put the rest in --note"
                ),
                (Field::IdeaTitle, Unfit::Empty) => {
                    "the idea's title is empty: name the hunch, e.g. \"UX research\"".into()
                }
                (Field::IdeaTitle, Unfit::TooLong) => format!(
                    "the idea's title is over {max} characters: keep it short, and put the rest in --why"
                ),
                (Field::PersonName, Unfit::Empty) => {
                    "the person's name is empty: say who, e.g. \"Sam Lee\"".into()
                }
                (Field::PersonName, Unfit::TooLong) => format!(
                    "the person's name is over {max} characters: keep it to a name, and put the rest in --notes"
                ),
            })
        })
    }

    /// [`Field::fit`], with a message naming `what` (an import file's field path).
    pub fn clean_at(self, value: &str, what: &str) -> Result<String, Error> {
        self.fit(value).map_err(|unfit| {
            Error::Invalid(match unfit {
                Unfit::Empty => format!("{what} is empty"),
                Unfit::TooLong => format!("{what} is over {} characters", self.max_chars()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_folds_space_and_counts_characters_not_bytes() {
        for field in [Field::ShiftText, Field::IdeaTitle, Field::PersonName] {
            let max = field.max_chars();
            assert_eq!(field.fit("  a \t b\n").unwrap(), "a b");
            assert_eq!(field.fit("   "), Err(Unfit::Empty));
            assert!(field.fit(&"é".repeat(max)).is_ok());
            assert_eq!(field.fit(&"é".repeat(max + 1)), Err(Unfit::TooLong));
        }
        assert!(
            Field::PersonName
                .clean("")
                .unwrap_err()
                .to_string()
                .contains("name is empty")
        );
    }
}
