"""Education scenario packs (场景包): one per problem of the product, each a list of the same public parts a
user builds (catalogue metrics, saved reports, dashboards, segments) installed into a project through the
same functions the API calls, plus a headline computed through the query service. See docs/packs.md."""
