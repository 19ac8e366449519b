"""People: un-namespaced, because Django's auth settings name "login" (LOGIN_URL)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from people import views

urlpatterns = [
    path("accounts/signup/", views.sign_up, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # Django's LogoutView takes POST only: a link cannot log anyone out (CSRF).
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/profile/", views.profile_edit, name="profile_edit"),
    path("people/<str:username>/", views.person_detail, name="person"),
]
