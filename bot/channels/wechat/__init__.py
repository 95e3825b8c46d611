"""The WeChat Official Account channel: signature and AES crypto, XML, the CS API, the webhook."""
