"""convai-toy-plugin: an example of every kind of part a third party can add to convai."""
