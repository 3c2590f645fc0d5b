"""Back up and restore Amazon Cognito user pools."""

__version__ = "0.1.0"
